// The deterministic global-norm reduction. Pass 1: a fixed grid (what stays resident, capped at
// kMaxNormBlocks; it depends only on the device and n) streams the arena in 16-byte vectors,
// each thread accumulating in double, and cub::BlockReduce writes one partial per block - no
// atomics, so the order of additions is fixed. Pass 2: one block combines the partials in a
// fixed order and computes norm, scale and skip on the device (Note [clip scale on device]).
#include <cub/block/block_reduce.cuh>

#include "kernels/clip/clip.hpp"
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"

namespace cutrain::kernels {
namespace {

struct Combine {
  __device__ rules::NormPartial operator()(const rules::NormPartial& a,
                                           const rules::NormPartial& b) const {
    return rules::combine(a, b);
  }
};

__global__ void __launch_bounds__(kBlock)
    norm_partials_kernel(const float* __restrict__ g, std::size_t n, bool vec,
                         rules::NormPartial* __restrict__ partials) {
  using Reduce = cub::BlockReduce<rules::NormPartial, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  rules::NormPartial acc{0.0, 0.0F, 0.0F};
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = tid; i < n4; i += stride) {
    const Vec4 v = load4(g, i);
#pragma unroll
    for (int k = 0; k < 4; ++k) rules::accumulate(acc, v.v[k]);
  }
  for (std::size_t i = n4 * 4 + tid; i < n; i += stride) rules::accumulate(acc, g[i]);
  const rules::NormPartial block = Reduce(temp).Reduce(acc, Combine{});
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

__global__ void __launch_bounds__(kBlock)
    norm_finish_kernel(const rules::NormPartial* __restrict__ partials, int count, float max_norm,
                       bool l2, rules::ClipResult* __restrict__ result) {
  using Reduce = cub::BlockReduce<rules::NormPartial, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  rules::NormPartial acc{0.0, 0.0F, 0.0F};
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc = rules::combine(acc, partials[i]);
  const rules::NormPartial total = Reduce(temp).Reduce(acc, Combine{});
  if (threadIdx.x == 0) *result = rules::finish(total, max_norm, l2);
}

}  // namespace

void launch_clip_norm(const float* grads, std::size_t n, rules::NormPartial* partials,
                      rules::ClipResult* result, float max_norm, bool l2, NativeStream stream) {
  const int grid = std::min(resident_grid<norm_partials_kernel>((n + 3) / 4), kMaxNormBlocks);
  norm_partials_kernel<<<grid, kBlock, 0, stream>>>(grads, n, aligned16(grads), partials);
  CUTRAIN_CUDA_CHECK_LAUNCH();
  norm_finish_kernel<<<1, kBlock, 0, stream>>>(partials, grid, max_norm, l2, result);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
