#pragma once
// Element-wise rules of the ops family. Each runs in the CUDA kernels (kernels/ops/axpy.cu) and
// in the CPU loops (src/ops/elementwise.cpp, src/init/init.cpp, src/clip/clip.cpp); see
// Note [bit-identical backends].

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

// y <- alpha * x + y as one correctly rounded fused multiply-add (BLAS saxpy).
CUTRAIN_HD float axpy(float alpha, float x, float y) {
  return fmaf(alpha, x, y);
}

CUTRAIN_HD float scale(float alpha, float x) {
  return alpha * x;
}

// x <- shift + scale * x, one rounding (initialization's U(0,1] -> U(a,b]).
CUTRAIN_HD float affine(float scale, float x, float shift) {
  return fmaf(scale, x, shift);
}

// torch.lerp(self, end, w): self + w (end - self) for |w| < 0.5, else end - (end - self)(1 - w)
// (the second form is exact at w = 1), each a single fused multiply-add as PyTorch's vectorized
// CPU kernel (fmadd / fnmadd) and its CUDA kernel evaluate them. Weight averaging's update
// (Note [weight averaging]) is lerp(ema, p, 1 - decay).
CUTRAIN_HD float lerp(float self, float end, float w) {
  const float diff = end - self;
  return fabsf(w) < 0.5F ? fmaf(w, diff, self) : fmaf(-diff, 1.0F - w, end);
}

// Gradient clipping by value, torch.nn.utils.clip_grad_value_: clamp to [-limit, limit]; NaN
// stays NaN (fminf/fmaxf would drop it), so the non-finite guard still sees it.
CUTRAIN_HD float clip_value(float limit, float g) {
  return g < -limit ? -limit : (g > limit ? limit : g);
}

}  // namespace cutrain::rules
