// Element-wise op kernels: thin grid-stride loops around the rules in axpy.cuh. Unary maps
// (scale, affine, fill, clip_value) share one kernel template over a functor, binary ones
// (axpy, lerp) another.
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"
#include "kernels/ops/axpy.cuh"
#include "kernels/ops/ops.hpp"

namespace cutrain::kernels {
namespace {

// y[i] <- op(x[i], y[i]): the binary maps (axpy, lerp).
template <class Op>
__global__ void zip_kernel(Op op, const float* __restrict__ x, float* __restrict__ y, std::size_t n,
                           bool vec) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = tid; i < n4; i += stride) {
    const Vec4 xv = load4(x, i);
    Vec4 yv = load4(y, i);
#pragma unroll
    for (int k = 0; k < 4; ++k) yv.v[k] = op(xv.v[k], yv.v[k]);
    store4(y, i, yv);
  }
  for (std::size_t i = n4 * 4 + tid; i < n; i += stride) y[i] = op(x[i], y[i]);
}

template <class Op>
void launch_zip(Op op, const float* x, float* y, std::size_t n, NativeStream stream) {
  if (n == 0) return;
  const int grid = resident_grid<zip_kernel<Op>>((n + 3) / 4);
  zip_kernel<Op><<<grid, kBlock, 0, stream>>>(op, x, y, n, aligned16(x, y));
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

struct AxpyOp {
  float alpha;
  __device__ float operator()(float x, float y) const { return rules::axpy(alpha, x, y); }
};
struct LerpOp {  // y <- lerp(y, x, w)
  float w;
  __device__ float operator()(float end, float self) const { return rules::lerp(self, end, w); }
};

// x[i] <- op(x[i]).
template <class Op>
__global__ void map_kernel(Op op, float* __restrict__ x, std::size_t n, bool vec) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = tid; i < n4; i += stride) {
    Vec4 xv = load4(x, i);
#pragma unroll
    for (int k = 0; k < 4; ++k) xv.v[k] = op(xv.v[k]);
    store4(x, i, xv);
  }
  for (std::size_t i = n4 * 4 + tid; i < n; i += stride) x[i] = op(x[i]);
}

template <class Op>
void launch_map(Op op, float* x, std::size_t n, NativeStream stream) {
  if (n == 0) return;
  const int grid = resident_grid<map_kernel<Op>>((n + 3) / 4);
  map_kernel<Op><<<grid, kBlock, 0, stream>>>(op, x, n, aligned16(x));
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

struct ScaleOp {
  float alpha;
  __device__ float operator()(float x) const { return rules::scale(alpha, x); }
};
struct AffineOp {
  float scale, shift;
  __device__ float operator()(float x) const { return rules::affine(scale, x, shift); }
};
struct FillOp {
  float value;
  __device__ float operator()(float) const { return value; }
};
struct ClipValueOp {
  float limit;
  __device__ float operator()(float g) const { return rules::clip_value(limit, g); }
};

}  // namespace

void launch_axpy(float alpha, const float* x, float* y, std::size_t n, NativeStream stream) {
  launch_zip(AxpyOp{alpha}, x, y, n, stream);
}

void launch_lerp(float w, const float* end, float* self, std::size_t n, NativeStream stream) {
  launch_zip(LerpOp{w}, end, self, n, stream);
}

void launch_scale(float alpha, float* x, std::size_t n, NativeStream stream) {
  launch_map(ScaleOp{alpha}, x, n, stream);
}
void launch_affine(float scale, float* x, float shift, std::size_t n, NativeStream stream) {
  launch_map(AffineOp{scale, shift}, x, n, stream);
}
void launch_fill(float value, float* x, std::size_t n, NativeStream stream) {
  launch_map(FillOp{value}, x, n, stream);
}
void launch_clip_value(float limit, float* x, std::size_t n, NativeStream stream) {
  launch_map(ClipValueOp{limit}, x, n, stream);
}

}  // namespace cutrain::kernels
