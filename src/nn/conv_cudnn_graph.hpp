#pragma once
// The graph-API side of Note [convolutions on cuDNN] (conv_cudnn.hpp), shared by the plan cache
// (conv_cudnn.cpp) and candidates() (conv_cudnn_graph.cpp). CUTRAIN_WITH_CUDNN builds only.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "src/cuda/cudnn.hpp"
#include "src/nn/conv_cudnn.hpp"

#if CUTRAIN_WITH_CUDNN

namespace cutrain::nn::cudnn_conv {

inline constexpr std::int64_t kX = 1, kW = 2, kY = 3;  // unique ids (Request)

// The descriptors of one request's operation graph, kept alive together.
struct Graph {
  detail::cudnn::Descriptor x, w, y, conv, op, graph;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  std::string failed;  // which descriptor failed
};

/// One request's operation graph: fp32 NCHW tensors, a cross-correlation with PyTorch's symmetric
/// padding and fp32 accumulation, beta 0. handle null: for heuristics without a device.
Graph make_graph(const Request& r, cudnnHandle_t handle);
/// The engine configurations of one heuristics mode, in its order; *listed += how many it ranks.
std::vector<detail::cudnn::Descriptor> heuristics(const Graph& gr, cudnnBackendHeurMode_t mode,
                                                  int* listed = nullptr);
/// Whether an engine configuration passes Note [convolutions on cuDNN]'s filter; its engine's
/// global index into *engine.
bool acceptable(const detail::cudnn::Descriptor& config, bool allow_tf32, std::int64_t* engine);
/// The largest power of two, at most 16, that divides every address.
std::int64_t alignment_of(std::initializer_list<const void*> pointers);
/// "forward at batch 128": a request as a reason names it.
std::string request_str(const Request& r);

}  // namespace cutrain::nn::cudnn_conv

#endif  // CUTRAIN_WITH_CUDNN
