// Note [augmentation on the device] (kernels/data/augment.cuh): a block per row (grid-stride
// over the rows), every thread of it computing the row's draw - two hashes, cheaper than a
// shared-memory broadcast and its barrier - then writing every blockDim-th value of the row.
// Reads are gathers within one row (784 floats for Fashion-MNIST: in L1 after the first
// touch), writes coalesced.
#include <cstdint>

#include "kernels/common/grid_stride.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/data/data.hpp"

namespace cutrain::kernels {
namespace {

__global__ void __launch_bounds__(kBlock)
    augment_rows_kernel(rules::AugmentArgs a, const float* __restrict__ x, std::int64_t rows,
                        float* __restrict__ y) {
  const std::int64_t epoch = *a.epoch;
  const std::int64_t slot = *a.slot;
  const std::int64_t features = a.channels * a.height * a.width;
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const rules::AugmentDraw d = rules::augment_draw(a, epoch, slot, row);
    const float* in = x + row * features;
    float* out = y + row * features;
    for (std::int64_t e = threadIdx.x; e < features; e += blockDim.x)
      out[e] = rules::augment_value(a, d, in, e);
  }
}

// A thread per element: the gather stays inside one image line (28 floats for Fashion-MNIST), so
// a warp's reads cover the lines its writes do.
__global__ void mirror_rows_kernel(const float* __restrict__ x, std::size_t n, std::int64_t width,
                                   float* __restrict__ y) {
  for (std::size_t e = global_id(); e < n; e += grid_stride())
    y[e] = x[rules::mirror_source(static_cast<std::int64_t>(e), width)];
}

}  // namespace

void launch_mirror_rows(const float* x, std::size_t n, std::int64_t width, float* y,
                        NativeStream stream) {
  CUTRAIN_LAUNCH(mirror_rows_kernel, n, x, n, width, y);
}

void launch_augment_rows(const rules::AugmentArgs& a, const float* x, std::int64_t rows, float* y,
                         NativeStream stream) {
  if (rows == 0) return;
  // A block per row up to the resident grid: a batch of 128 rows is one wave.
  const int full = resident_grid<augment_rows_kernel>(static_cast<std::size_t>(rows) * kBlock);
  augment_rows_kernel<<<full, kBlock, 0, stream>>>(a, x, rows, y);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
