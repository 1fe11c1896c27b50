// Note [convolutions on cuDNN] (conv_cudnn.hpp): the graph-API descriptors of one convolution,
// the engine filter, and the execution plans' cache. CUTRAIN_WITH_CUDA builds.
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

namespace cutrain::nn::cudnn_conv {

bool enabled_by_environment() {
  return cutrain::detail::env_switch("CUTRAIN_CUDNN", true, "lower every convolution to GEMMs",
                                     "cuDNN where it loads");
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

namespace {

using detail::cudnn::Descriptor;
using detail::cudnn::status_name;

constexpr std::int64_t kX = 1, kW = 2, kY = 3;  // unique ids (Request)

// An NCHW float tensor, packed.
Descriptor tensor(std::int64_t uid, std::array<std::int64_t, 4> dims, std::int64_t alignment) {
  const std::array<std::int64_t, 4> strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3],
                                               dims[3], 1};
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data())
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data())
      .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)
      .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment)
      .finalize();
  return t;
}

// PyTorch's Conv2d is a cross-correlation; padding the same before and after (PyTorch's
// symmetric padding), fp32 accumulation.
Descriptor convolution(const rules::ConvGeometry& g) {
  const std::int64_t dims = 2;
  const std::array<std::int64_t, 2> pad = {g.ph, g.pw}, dilation = {g.dh, g.dw},
                                    stride = {g.sh, g.sw};
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  Descriptor c(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  c.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims)
      .set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad.data())
      .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad.data())
      .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation.data())
      .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride.data())
      .finalize();
  return c;
}

// The descriptors of one request's operation graph, kept alive together.
struct Graph {
  Descriptor x, w, y, conv, op, graph;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  std::string failed;  // which descriptor failed
};

void check(Graph& gr, const Descriptor& d, const char* what) {
  if (gr.status == CUDNN_STATUS_SUCCESS && d.status() != CUDNN_STATUS_SUCCESS) {
    gr.status = d.status();
    gr.failed = what;
  }
}

// One operation's descriptor type and attribute names: its x (dx), w (dw) and y (dy) tensors.
struct Attributes {
  cudnnBackendDescriptorType_t type;
  cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};
Attributes attributes(Op op) {
  switch (op) {
    case Op::kBackwardData:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA};
    case Op::kBackwardFilter:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
    default:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA};
  }
}

// handle null: heuristics without a device (candidates()).
Graph make_graph(const Request& r, cudnnHandle_t handle) {
  const rules::ConvGeometry& g = r.g;
  Graph gr;
  gr.x = tensor(kX, {r.n, g.c, g.h, g.w}, r.alignment);
  gr.w = tensor(kW, {g.co, g.c, g.kh, g.kw}, r.alignment);
  gr.y = tensor(kY, {r.n, g.co, g.ho, g.wo}, r.alignment);
  gr.conv = convolution(g);
  check(gr, gr.x, "the input tensor");
  check(gr, gr.w, "the weight tensor");
  check(gr, gr.y, "the output tensor");
  check(gr, gr.conv, "the convolution");
  if (gr.status != CUDNN_STATUS_SUCCESS) return gr;
  const float alpha = 1.0F, beta = 0.0F;  // beta 0: every output overwritten
  cudnnBackendDescriptor_t x = gr.x.get(), w = gr.w.get(), y = gr.y.get(), conv = gr.conv.get();
  const auto bd = CUDNN_TYPE_BACKEND_DESCRIPTOR;
  const Attributes a = attributes(r.op);
  gr.op = Descriptor(a.type);
  gr.op.set(a.x, bd, 1, &x)
      .set(a.w, bd, 1, &w)
      .set(a.y, bd, 1, &y)
      .set(a.conv, bd, 1, &conv)
      .set(a.alpha, CUDNN_TYPE_FLOAT, 1, &alpha)
      .set(a.beta, CUDNN_TYPE_FLOAT, 1, &beta);
  gr.op.finalize();
  check(gr, gr.op, "the operation");
  if (gr.status != CUDNN_STATUS_SUCCESS) return gr;
  cudnnBackendDescriptor_t op = gr.op.get();
  gr.graph = Descriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  gr.graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, bd, 1, &op);
  if (handle != nullptr)
    gr.graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  gr.graph.finalize();
  check(gr, gr.graph, "the operation graph");
  return gr;
}

// The engine configurations of one heuristics mode, in its order; *listed += how many it ranks.
// Without a GPU heuristics rank engines but hand none out (no device to check them against).
std::vector<Descriptor> heuristics(const Graph& gr, cudnnBackendHeurMode_t mode,
                                   int* listed = nullptr) {
  Descriptor h(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  cudnnBackendDescriptor_t graph = gr.graph.get();
  h.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode)
      .finalize();
  if (h.status() != CUDNN_STATUS_SUCCESS) return {};
  std::int64_t count = 0;
  const auto* a = detail::cudnn::api();
  if (a->get_attribute(h.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                       &count, nullptr) != CUDNN_STATUS_SUCCESS ||
      count <= 0)
    return {};
  if (listed != nullptr) *listed += static_cast<int>(count);
  // The results are written into descriptors the caller created (not finalized).
  std::vector<Descriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (std::int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    if (configs.back().status() != CUDNN_STATUS_SUCCESS) return {};
    raw.push_back(configs.back().get());
  }
  std::int64_t got = 0;
  if (a->get_attribute(h.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                       &got, raw.data()) != CUDNN_STATUS_SUCCESS)
    return {};
  configs.resize(static_cast<std::size_t>(std::clamp<std::int64_t>(got, 0, count)));
  return configs;
}

// An engine's notes of one kind (numerical or behaviour); nullopt when cuDNN does not say.
template <class Note, int kCount>
std::optional<std::vector<Note>> notes(cudnnBackendDescriptor_t engine,
                                       cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type) {
  std::array<Note, kCount> all{};
  std::int64_t n = 0;
  if (detail::cudnn::api()->get_attribute(engine, name, type, kCount, &n, all.data()) !=
      CUDNN_STATUS_SUCCESS)
    return std::nullopt;
  return std::vector<Note>(all.begin(), all.begin() + std::clamp<std::int64_t>(n, 0, kCount));
}

// Whether an engine configuration passes Note [convolutions on cuDNN]'s filter; its engine's
// global index into *engine.
bool acceptable(const Descriptor& config, bool allow_tf32, std::int64_t* engine) {
  const auto* a = detail::cudnn::api();
  Descriptor e(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  cudnnBackendDescriptor_t raw = e.get();
  std::int64_t n = 0;
  if (e.status() != CUDNN_STATUS_SUCCESS ||
      a->get_attribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                       &n, &raw) != CUDNN_STATUS_SUCCESS)
    return false;
  const auto numerical = notes<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT>(
      raw, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE);
  const auto behavior = notes<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT>(
      raw, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE);
  if (!numerical || !behavior) return false;
  for (const cudnnBackendNumericalNote_t note : *numerical)
    if (note == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC ||
        note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS || note == CUDNN_NUMERICAL_NOTE_FFT ||
        note == CUDNN_NUMERICAL_NOTE_WINOGRAD || note == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4 ||
        note == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6 ||
        note == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13 ||
        (note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE && !allow_tf32))
      return false;
  for (const cudnnBackendBehaviorNote_t note : *behavior)
    if (note == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) return false;
  *engine = -1;
  a->get_attribute(raw, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, engine);
  return true;
}

// The largest power of two, at most 16, that divides every address.
std::int64_t alignment_of(std::initializer_list<const void*> pointers) {
  std::int64_t align = 16;
  for (const void* p : pointers) {
    if (p == nullptr) continue;
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    while (align > 1 && at % static_cast<std::uintptr_t>(align) != 0) align /= 2;
  }
  return align;
}

std::string request_str(const Request& r) {
  static constexpr const char* kOps[] = {"forward", "backward data", "backward filter"};
  return std::string(kOps[static_cast<int>(r.op)]) + " at batch " + std::to_string(r.n);
}

}  // namespace

Candidates candidates(const Request& r) {
  Candidates c;
  if (detail::cudnn::api() == nullptr) {
    c.why = detail::cudnn::unavailable_reason();
    return c;
  }
  const Graph gr = make_graph(r, nullptr);
  if (gr.status != CUDNN_STATUS_SUCCESS) {
    c.why = gr.failed + ": " + status_name(gr.status);
    return c;
  }
  std::int64_t engine = 0;
  for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK})
    for (const Descriptor& config : heuristics(gr, mode, &c.listed)) {
      ++c.offered;
      if (acceptable(config, r.allow_tf32, &engine)) ++c.kept;
    }
  if (c.kept == 0)
    c.why = std::to_string(c.listed) + " engine configurations ranked, " +
            std::to_string(c.offered) + " handed out, none deterministic, direct, precompiled " +
            "and TF32-free as asked";
  return c;
}

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
