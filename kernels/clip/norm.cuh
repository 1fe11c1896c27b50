#pragma once
// The rules of the global-norm reduction, shared by the CUDA kernels (norm.cu) and the CPU
// loops (src/clip/clip.cpp). Accumulating g^2 in double means no overflow for any float input,
// so "the sum is not finite" is exactly "some gradient is NaN or Inf".

#include <cmath>
#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

struct NormPartial {
  double sumsq;
  float maxabs;
  float pad;
};

CUTRAIN_HD void accumulate(NormPartial& acc, float g) {
  acc.sumsq += static_cast<double>(g) * static_cast<double>(g);
  acc.maxabs = fmaxf(acc.maxabs, fabsf(g));
}

CUTRAIN_HD NormPartial combine(NormPartial a, const NormPartial& b) {
  a.sumsq += b.sumsq;
  a.maxabs = fmaxf(a.maxabs, b.maxabs);
  return a;
}

// combine() as the function object cub::BlockReduce takes (the norm kernels' reductions).
struct CombineNorms {
  CUTRAIN_HD NormPartial operator()(const NormPartial& a, const NormPartial& b) const {
    return combine(a, b);
  }
};

struct ClipResult {
  float norm;
  float scale;
  std::int32_t skip;
  std::int32_t pad;
};

// 1 / S for a loss scale S in device memory (null: no scaling, 1): exact, S being a power of two.
CUTRAIN_HD float inverse_scale(const float* loss_scale) {
  return loss_scale != nullptr ? 1.0F / *loss_scale : 1.0F;
}

// The norm, the step's gradient factor and the skip flag from the partials of S x g, where S is
// the loss scale (1 without one) and inv_scale = 1 / S (Note [dynamic loss scale],
// cutrain/optim/step_control.hpp): the norm of the unscaled gradient g - sumsq x inv^2 in double
// and maxabs x inv are exact, S being a power of two -, the clip coefficient
// min(1, max_norm / (norm + 1e-6)) in float as PyTorch computes it, and the factor clip x inv
// that the step multiplies each S x g by (GradScaler's unscale_ then clip_grad_norm_).
CUTRAIN_HD ClipResult finish(const NormPartial& total, float max_norm, bool l2,
                             float inv_scale = 1.0F) {
  // x - x is 0 for every finite x and NaN for NaN and +-Inf: isfinite without std:: on the
  // host side or CUDA's overload on the device side. With S < 1 a finite S x g may unscale to
  // inf, as GradScaler's unscale_ finds: the largest one does if any does.
  const float maxabs = total.maxabs * inv_scale;
  const bool nonfinite = !(total.sumsq - total.sumsq == 0.0) || !(maxabs - maxabs == 0.0F);
  const double inv = inv_scale;
  const double sumsq = total.sumsq * inv * inv;
  const float norm = l2 || nonfinite ? static_cast<float>(sqrt(sumsq)) : maxabs;
  const float clip = nonfinite ? 1.0F : fminf(1.0F, max_norm / (norm + 1e-6F));
  return {norm, clip * inv_scale, nonfinite ? 1 : 0, 0};
}

}  // namespace cutrain::rules
