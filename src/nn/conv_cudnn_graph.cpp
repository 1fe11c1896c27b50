// Note [convolutions on cuDNN] (conv_cudnn.hpp): one convolution's graph-API descriptors, cuDNN's
// ranking of engine configurations for it, and the filter they pass. CUTRAIN_WITH_CUDNN builds.
#include "src/nn/conv_cudnn_graph.hpp"

#if CUTRAIN_WITH_CUDNN

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cutrain::nn::cudnn_conv {

using detail::cudnn::Descriptor;
using detail::cudnn::status_name;

namespace {

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

}  // namespace

// handle null: heuristics without a device (candidates()).
Graph make_graph(const Request& r, cudnnHandle_t handle) {
  const rules::ConvGeometry& g = r.g;
  Graph gr;
  gr.x = tensor(kX, {r.n, g.c, g.h, g.w}, r.alignment);
  // Note [grouped convolution]: W [Co, C/G, kh, kw] against x's C channels - cuDNN takes the
  // group count from the ratio, as PyTorch's Conv2d from its weight.
  gr.w = tensor(kW, {g.co, g.c / g.groups, g.kh, g.kw}, r.alignment);
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
std::vector<Descriptor> heuristics(const Graph& gr, cudnnBackendHeurMode_t mode, int* listed) {
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

Candidates candidates(const Request& r) {
  Candidates c;
  if (detail::cudnn::api() == nullptr) {
    c.why = detail::cudnn::unavailable_reason();
    return c;
  }
  if (c.why = refusal(r.g); !c.why.empty()) return c;
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

}  // namespace cutrain::nn::cudnn_conv

#endif  // CUTRAIN_WITH_CUDNN
