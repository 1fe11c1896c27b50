// Batches of a dataset resident on the GPU (Note [resident datasets] in
// include/cutrain/data/loader.hpp): a grid-stride copy of whole rows picked by the epoch's
// order. Rows of a width divisible by 4 (Fashion-MNIST's 784 features) move as 16-byte vectors;
// the copy is pure data movement, so the 4-byte elements are copied as bits whatever their type.
#include <cstdint>

#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"
#include "kernels/data/data.hpp"

namespace cutrain::kernels {
namespace {

// V: uint4 (4 elements per access) or std::uint32_t; `width` counts V units per row.
template <class V>
__global__ void __launch_bounds__(kBlock)
    gather_rows_kernel(const V* __restrict__ src, std::int64_t width,
                       const std::int64_t* __restrict__ order, std::int64_t rows,
                       V* __restrict__ dst) {
  const auto n = static_cast<std::size_t>(rows * width);
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::size_t r = i / static_cast<std::size_t>(width);
    const std::size_t c = i - r * static_cast<std::size_t>(width);
    dst[i] = src[static_cast<std::size_t>(order[r]) * static_cast<std::size_t>(width) + c];
  }
}

}  // namespace

void launch_gather_rows(const void* src, std::int64_t width, const std::int64_t* order,
                        std::int64_t rows, void* dst, NativeStream stream) {
  if (rows == 0 || width == 0) return;
  if (width % 4 == 0 && aligned16(src, dst)) {
    const std::int64_t w4 = width / 4;
    const int grid = resident_grid<gather_rows_kernel<uint4>>(static_cast<std::size_t>(rows * w4));
    gather_rows_kernel<uint4><<<grid, kBlock, 0, stream>>>(static_cast<const uint4*>(src), w4,
                                                           order, rows, static_cast<uint4*>(dst));
  } else {
    const int grid =
        resident_grid<gather_rows_kernel<std::uint32_t>>(static_cast<std::size_t>(rows * width));
    gather_rows_kernel<std::uint32_t>
        <<<grid, kBlock, 0, stream>>>(static_cast<const std::uint32_t*>(src), width, order, rows,
                                      static_cast<std::uint32_t*>(dst));
  }
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
