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

// norm, the clip coefficient min(1, max_norm / (norm + 1e-6)) in float as PyTorch computes it,
// and the skip flag.
CUTRAIN_HD ClipResult finish(const NormPartial& total, float max_norm, bool l2) {
  // x - x is 0 for every finite x and NaN for NaN and +-Inf: isfinite without std:: on the
  // host side or CUDA's overload on the device side.
  const bool nonfinite = !(total.sumsq - total.sumsq == 0.0);
  const float norm = l2 || nonfinite ? static_cast<float>(sqrt(total.sumsq)) : total.maxabs;
  const float scale = nonfinite ? 1.0F : fminf(1.0F, max_norm / (norm + 1e-6F));
  return {norm, scale, nonfinite ? 1 : 0, 0};
}

}  // namespace cutrain::rules
