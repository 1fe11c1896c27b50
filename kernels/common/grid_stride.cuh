#pragma once
// A thread's place in a grid-stride loop, and the launch of one: every kernel launched with
// CUTRAIN_LAUNCH is a grid-stride loop, so the 65 535-block cap bounds the launch, not the work
// (Note [grid-stride everywhere], kernels/common/grid.hpp).
#include <cstddef>

#include "kernels/common/launch.cuh"

namespace cutrain::kernels {

__device__ __forceinline__ std::size_t global_id() {
  return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_stride() {
  return static_cast<std::size_t>(gridDim.x) * blockDim.x;
}
inline unsigned blocks_for(std::size_t n) {
  return capped_blocks(n, kBlock);  // Note [grid-stride everywhere]
}

}  // namespace cutrain::kernels

// `kernel` over n work items on `stream` (a variable of the caller's), nothing launched for 0.
#define CUTRAIN_LAUNCH(kernel, n, ...)                                                    \
  do {                                                                                    \
    if ((n) == 0) break;                                                                  \
    kernel<<<::cutrain::kernels::blocks_for(n), ::cutrain::kernels::kBlock, 0, stream>>>( \
        __VA_ARGS__);                                                                     \
    CUTRAIN_CUDA_CHECK_LAUNCH();                                                          \
  } while (0)

// Vectorized maps: a thread per 4 elements.
#define CUTRAIN_LAUNCH_VEC(kernel, n, ...) CUTRAIN_LAUNCH(kernel, ((n) + 3) / 4, __VA_ARGS__)
