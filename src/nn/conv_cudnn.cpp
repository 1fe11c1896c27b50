// Note [convolutions on cuDNN] (conv_cudnn.hpp): the model's cuDNN handle and the execution
// plans' cache (the graphs and the engine filter: conv_cudnn_graph.cpp). CUTRAIN_WITH_CUDA
// builds.
#include "src/nn/conv_cudnn.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "cutrain/error.hpp"
#include "kernels/nn/conv.hpp"
#include "src/core/environment.hpp"
#include "src/cuda/cudnn.hpp"
#include "src/nn/conv_cudnn_graph.hpp"

namespace cutrain::nn::cudnn_conv {

bool enabled_by_environment() {
  return cutrain::detail::env_switch("CUTRAIN_CUDNN", true, "lower every convolution to GEMMs",
                                     "cuDNN where it loads");
}

std::string refusal(const rules::ConvGeometry& g) {
  if (g.c / g.groups == 1 && g.co / g.groups == 1)
    return "one input and one output channel per group: cuDNN's heuristics divide by zero on it";
  return {};
}

void* handle(LayerContext::Resources& r) {
  if (!r.cudnn_tried) {
    r.cudnn_tried = true;
#if CUTRAIN_WITH_CUDNN
    // Read per model, so that one process can compare both paths
    // (CudnnConvGpu.MatchesTheLoweringAndRepeatsItsBits).
    if (!enabled_by_environment()) {
      r.cudnn_why = "CUTRAIN_CUDNN=0";
    } else if (detail::cudnn::version() == 0) {
      r.cudnn_why = detail::cudnn::unavailable_reason();
    } else {
      try {
        r.cudnn = std::make_shared<detail::cudnn::Handle>(r.device.ordinal());
      } catch (const Error& e) {
        r.cudnn_why = e.what();
      }
    }
#else
    r.cudnn_why = detail::cudnn::unavailable_reason();
#endif
  }
#if CUTRAIN_WITH_CUDNN
  if (r.cudnn != nullptr) static_cast<detail::cudnn::Handle*>(r.cudnn.get())->set_stream(r.stream);
#endif
  return r.cudnn.get();
}

#if CUTRAIN_WITH_CUDNN

using detail::cudnn::Descriptor;
using detail::cudnn::status_name;

class Plans::Plan {
 public:
  Graph graph;
  Descriptor config, plan;
  std::int64_t engine = -1;
  std::size_t workspace = 0;

  void run(cudnnHandle_t handle, const void* x, const void* w, const void* y,
           void* workspace_ptr) const {
    const std::array<std::int64_t, 3> uids = {kX, kW, kY};
    const std::array<const void*, 3> pointers = {x, w, y};
    Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids.data())
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers.data())
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace_ptr)
        .finalize();
    CUTRAIN_CHECK(pack.status() == CUDNN_STATUS_SUCCESS,
                  "cuDNN: the convolution's variant pack: ", status_name(pack.status()));
    const cudnnStatus_t s = detail::cudnn::api()->execute(handle, plan.get(), pack.get());
    CUTRAIN_CHECK(s == CUDNN_STATUS_SUCCESS, "cuDNN: executing a convolution (engine ", engine,
                  "): ", status_name(s));
  }
};

Plans::Plans() = default;
Plans::~Plans() = default;

const Plans::Plan* Plans::plan(void* handle_ptr, const Request& r, std::size_t workspace_bytes) {
  const Key key{static_cast<int>(r.op), r.n, r.alignment, r.allow_tf32};
  if (auto it = plans_.find(key); it != plans_.end()) {
    if (it->second == nullptr) last_ = why_[key];
    return it->second.get();
  }
  auto& slot = plans_[key];
  auto fail = [&](const std::string& why) -> const Plan* {
    why_[key] = "lowering (cuDNN, " + request_str(r) + ": " + why + ")";
    last_ = why_[key];
    return nullptr;
  };
  if (const std::string why = refusal(r.g); !why.empty()) return fail(why);
  auto* handle = static_cast<detail::cudnn::Handle*>(handle_ptr)->get();
  auto p = std::make_unique<Plan>();
  p->graph = make_graph(r, handle);
  if (p->graph.status != CUDNN_STATUS_SUCCESS)
    return fail(p->graph.failed + ": " + status_name(p->graph.status));
  int offered = 0;
  std::size_t smallest = SIZE_MAX;
  for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    for (Descriptor& config : heuristics(p->graph, mode)) {
      ++offered;
      std::int64_t engine = -1;
      if (!acceptable(config, r.allow_tf32, &engine)) continue;
      cudnnBackendDescriptor_t cfg = config.get();
      Descriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle)
          .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg)
          .finalize();
      if (plan.status() != CUDNN_STATUS_SUCCESS) continue;  // not for this device or shape
      std::int64_t bytes = 0, n = 0;
      if (detail::cudnn::api()->get_attribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                              CUDNN_TYPE_INT64, 1, &n,
                                              &bytes) != CUDNN_STATUS_SUCCESS)
        continue;
      smallest = std::min(smallest, static_cast<std::size_t>(bytes));
      if (static_cast<std::size_t>(bytes) > workspace_bytes) continue;
      p->config = std::move(config);
      p->plan = std::move(plan);
      p->engine = engine;
      p->workspace = static_cast<std::size_t>(bytes);
      slot = std::move(p);
      return slot.get();
    }
  }
  if (smallest != SIZE_MAX)
    return fail("its plans need " + std::to_string(smallest) + " bytes of workspace, " +
                std::to_string(workspace_bytes) + " are there");
  return fail(std::to_string(offered) + " engine configurations offered, none deterministic, " +
              "direct, precompiled, TF32-free as asked and buildable here");
}

bool Plans::forward(const backend::Exec& e, void* handle, const rules::ConvGeometry& g,
                    std::int64_t n, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, std::size_t workspace_bytes, rules::Store store) {
  const Request r{g, n, Op::kForward, alignment_of({x, w, y}), e.precision != Precision::kFp32};
  const Plan* p = plan(handle, r, workspace_bytes);
  if (p == nullptr) return false;
  p->run(static_cast<detail::cudnn::Handle*>(handle)->get(), x, w, y, workspace);
  // Note [16-bit stores]: the bias and the rounding in one pass (none in fp32 without a bias).
  if (bias != nullptr || store != rules::Store::kExact)
    kernels::launch_channel_bias(y, bias, n, g.co, g.p(), store, e.stream);
  last_ = "cuDNN " + std::to_string(detail::cudnn::version()) + " (engine " +
          std::to_string(p->engine) + ")";
  return true;
}

bool Plans::backward(const backend::Exec& e, void* handle, const rules::ConvGeometry& g,
                     std::int64_t n, const float* x, const float* dy, const float* w, float* dw,
                     float* dx, void* workspace, std::size_t workspace_bytes, rules::Store store) {
  const bool tf32 = e.precision != Precision::kFp32;
  const Plan* filter =
      plan(handle, {g, n, Op::kBackwardFilter, alignment_of({x, dw, dy}), tf32}, workspace_bytes);
  const Plan* data = dx == nullptr
                         ? nullptr
                         : plan(handle, {g, n, Op::kBackwardData, alignment_of({dx, w, dy}), tf32},
                                workspace_bytes);
  if (filter == nullptr || (dx != nullptr && data == nullptr)) return false;
  cudnnHandle_t h = static_cast<detail::cudnn::Handle*>(handle)->get();
  filter->run(h, x, dw, dy, workspace);
  if (dx == nullptr) return true;
  data->run(h, dx, w, dy, workspace);
  if (store != rules::Store::kExact)
    kernels::launch_channel_bias(dx, nullptr, n, g.c, g.in_plane(), store, e.stream);
  return true;
}

#else  // without cuDNN's header: every convolution lowers

Candidates candidates(const Request& /*r*/) {
  return {0, 0, 0, detail::cudnn::unavailable_reason()};
}
class Plans::Plan {};
Plans::Plans() = default;
Plans::~Plans() = default;
const Plans::Plan* Plans::plan(void* /*handle*/, const Request& /*r*/, std::size_t /*bytes*/) {
  return nullptr;
}
bool Plans::forward(const backend::Exec& /*e*/, void* /*handle*/, const rules::ConvGeometry& /*g*/,
                    std::int64_t /*n*/, const float* /*x*/, const float* /*w*/,
                    const float* /*bias*/, float* /*y*/, void* /*workspace*/,
                    std::size_t /*workspace_bytes*/, rules::Store /*store*/) {
  last_ = "lowering (" + detail::cudnn::unavailable_reason() + ")";
  return false;
}
bool Plans::backward(const backend::Exec& /*e*/, void* /*handle*/, const rules::ConvGeometry& /*g*/,
                     std::int64_t /*n*/, const float* /*x*/, const float* /*dy*/,
                     const float* /*w*/, float* /*dw*/, float* /*dx*/, void* /*workspace*/,
                     std::size_t /*workspace_bytes*/, rules::Store /*store*/) {
  return false;
}

#endif  // CUTRAIN_WITH_CUDNN

}  // namespace cutrain::nn::cudnn_conv
