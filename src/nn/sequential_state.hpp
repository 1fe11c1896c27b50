#pragma once
// What a built Sequential holds (src/nn/sequential.cpp: build and the passes;
// src/nn/sequential_precision.cpp: its precision, rounding and parameter copy).

#include <memory>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/nn/sequential.hpp"
#include "src/nn/context.hpp"
#if CUTRAIN_WITH_CUDA
#include "src/cuda/handles.hpp"
#include "src/cuda/lt_matmul.hpp"
#endif

namespace cutrain::nn {

struct Sequential::State {
  LayerContext::Resources res;
  Arena parameters, gradients, buffers;
#if CUTRAIN_WITH_CUDA
  std::unique_ptr<cutrain::detail::CublasHandle> cublas;
  std::unique_ptr<cutrain::detail::LtMatmul> lt;
#endif
  std::int64_t batch = 0;
  std::vector<Buffer> activations;  // activations[i]: output of layer i, [batch, widths[i+1]]
  std::vector<Buffer> workspaces;
  Buffer grad_a, grad_b;  // ping-pong gradients for backward
  Buffer forward_count;   // Note [forward count in device memory]: one uint64, or none
  // Note [16-bit values in fp32 storage]: the rounded parameters, input and top gradient.
  Arena compute;
  Buffer input16, grad16;
  Matrix input;  // the last forward's input (must stay alive until backward)
  Matrix output;
  std::int64_t forward_batch = -1;
};

}  // namespace cutrain::nn
