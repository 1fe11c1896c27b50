// The deterministic global-norm reduction in one launch. A fixed grid (enough blocks for n, at
// most kMaxNormBlocks: it depends on n alone) streams the arena in 16-byte
// vectors, each thread accumulating in double, and cub::BlockReduce makes one partial per block -
// no atomics on the values, so the order of additions is fixed. The last block to finish combines
// the partials in that same fixed order and computes norm, scale and skip on the device
// (Note [clip scale on device], Note [last block finishes]).
#include <cub/block/block_reduce.cuh>

#include "kernels/clip/clip.hpp"
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"

namespace cutrain::kernels {
namespace {

// Note [last block finishes]: the second pass used to be a one-block kernel of its own - a
// third launch per clipped step, and at 1M parameters the step is only ~10 us, so a kernel
// boundary is a large share of it. Here each block publishes its partial, fences, and takes a
// ticket; the block holding the last ticket has every other partial visible (the CUDA
// Programming Guide's threadfence reduction) and finishes. It resets the counter for the next
// launch on the stream, so the counter lives beside the partials and starts at zero.
__global__ void __launch_bounds__(kBlock)
    norm_kernel(const float* __restrict__ g, std::size_t n, bool vec, rules::NormPartial* partials,
                unsigned int* done_count, float max_norm, bool l2, const float* loss_scale,
                rules::ClipResult* __restrict__ result, float* __restrict__ norm_out) {
  using Reduce = cub::BlockReduce<rules::NormPartial, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ bool last;
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
  const rules::NormPartial block = Reduce(temp).Reduce(acc, rules::CombineNorms{});
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = block;
    __threadfence();  // the partial is visible device-wide before the ticket counts it
    last = atomicAdd(done_count, 1U) == gridDim.x - 1;
  }
  __syncthreads();  // also ends every thread's use of `temp` before the second reduction
  if (!last) return;
  __threadfence();
  acc = {0.0, 0.0F, 0.0F};
  for (unsigned int i = threadIdx.x; i < gridDim.x; i += blockDim.x) {
    // Through L2 (.cg): written by other blocks during this launch.
    const rules::NormPartial p{__ldcg(&partials[i].sumsq), __ldcg(&partials[i].maxabs), 0.0F};
    acc = rules::combine(acc, p);
  }
  const rules::NormPartial total = Reduce(temp).Reduce(acc, rules::CombineNorms{});
  if (threadIdx.x == 0) {
    // Note [dynamic loss scale]: S is read by the finishing block, before the step updates it.
    const rules::ClipResult r =
        rules::finish(total, max_norm, l2, rules::inverse_scale(loss_scale));
    *result = r;
    if (norm_out != nullptr) *norm_out = r.norm;
    *done_count = 0;
  }
}

}  // namespace

void launch_clip_norm(const float* grads, std::size_t n, rules::NormPartial* partials,
                      unsigned int* done_count, rules::ClipResult* result, float* norm_out,
                      float max_norm, bool l2, const float* loss_scale, NativeStream stream) {
  // Note [replicas reduce alike]: the grid - so the partition of the arena and the order of
  // every addition - depends on n alone, not on the device's SM count.
  const auto grid = capped_blocks((n + 3) / 4, kBlock, kMaxNormBlocks);
  norm_kernel<<<grid, kBlock, 0, stream>>>(grads, n, aligned16(grads), partials, done_count,
                                           max_norm, l2, loss_scale, result, norm_out);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
