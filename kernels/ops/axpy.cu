// Element-wise op kernels: thin grid-stride loops around the rules in axpy.cuh.
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"
#include "kernels/ops/axpy.cuh"
#include "kernels/ops/ops.hpp"

namespace cutrain::kernels {
namespace {

__global__ void axpy_kernel(float alpha, const float* __restrict__ x, float* __restrict__ y,
                            std::size_t n, bool vec) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = tid; i < n4; i += stride) {
    const Vec4 xv = load4(x, i);
    Vec4 yv = load4(y, i);
#pragma unroll
    for (int k = 0; k < 4; ++k) yv.v[k] = rules::axpy(alpha, xv.v[k], yv.v[k]);
    store4(y, i, yv);
  }
  for (std::size_t i = n4 * 4 + tid; i < n; i += stride) y[i] = rules::axpy(alpha, x[i], y[i]);
}

__global__ void scale_kernel(float alpha, float* __restrict__ x, std::size_t n, bool vec) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = tid; i < n4; i += stride) {
    Vec4 xv = load4(x, i);
#pragma unroll
    for (int k = 0; k < 4; ++k) xv.v[k] = rules::scale(alpha, xv.v[k]);
    store4(x, i, xv);
  }
  for (std::size_t i = n4 * 4 + tid; i < n; i += stride) x[i] = rules::scale(alpha, x[i]);
}

}  // namespace

void launch_axpy(float alpha, const float* x, float* y, std::size_t n, NativeStream stream) {
  if (n == 0) return;
  const int grid = resident_grid<axpy_kernel>((n + 3) / 4);
  axpy_kernel<<<grid, kBlock, 0, stream>>>(alpha, x, y, n, aligned16(x, y));
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_scale(float alpha, float* x, std::size_t n, NativeStream stream) {
  if (n == 0) return;
  const int grid = resident_grid<scale_kernel>((n + 3) / 4);
  scale_kernel<<<grid, kBlock, 0, stream>>>(alpha, x, n, aligned16(x));
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
