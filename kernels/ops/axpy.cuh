#pragma once
// y <- alpha * x + y, as one correctly rounded fused multiply-add per element (BLAS saxpy).
// The same function runs in the CUDA kernel (kernels/ops/axpy.cu) and in the CPU loop
// (src/ops/elementwise.cpp); see Note [bit-identical backends].

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

CUTRAIN_HD float axpy(float alpha, float x, float y) {
  return fmaf(alpha, x, y);
}
CUTRAIN_HD float scale(float alpha, float x) {
  return alpha * x;
}

}  // namespace cutrain::rules
