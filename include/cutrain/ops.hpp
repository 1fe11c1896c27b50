#pragma once
// Element-wise operations over whole arenas (one launch each on CUDA, one OpenMP loop on the CPU).

#include "cutrain/arena.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::ops {

/// y <- alpha * x + y   (BLAS axpy, written as one fmaf per element; kernels/ops/axpy.cuh)
void axpy(float alpha, const Arena& x, Arena& y, NativeStream stream = nullptr);

/// self <- lerp(self, end, w), torch.Tensor.lerp_ (kernels/ops/axpy.cuh)
void lerp(float w, const Arena& end, Arena& self, NativeStream stream = nullptr);

/// x <- alpha * x
void scale(float alpha, Arena& x, NativeStream stream = nullptr);

}  // namespace cutrain::ops
