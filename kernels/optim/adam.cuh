#pragma once
// The Adam / AdamW / AMSGrad update rule (formula and PyTorch notes:
// include/cutrain/optim/adam.hpp).

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

struct Adam {
  static constexpr int kSlots = 3;  // exp_avg, exp_avg_sq, max_exp_avg_sq
  // Note [option bits]
  enum : unsigned { kMaximize = 1, kL2 = 2, kDecoupled = 4, kAmsgrad = 8 };
  static constexpr int kBits = 4;
  static constexpr unsigned slots(unsigned bits) { return 3U | ((bits & kAmsgrad) ? 4U : 0U); }
  struct Hyper {
    float beta1;
    float beta2;
    float eps;
    bool amsgrad;
    bool maximize;
    bool decoupled;  // AdamW
  };
  struct Prepared {
    float neg_step_size;  // -lr / bc1
    float bc2_sqrt;       // sqrt(bc2)
    float weight_decay;
    float decay;  // AdamW: 1 - lr * weight_decay
    unsigned bits;
  };
  // Bias corrections in double, from this step's number t (PyTorch: Python floats). Once per
  // thread and group, not per element.
  CUTRAIN_HD static Prepared prepare(const Hyper& h, float lr, float weight_decay, int t) {
    const double bc1 = 1.0 - pow(static_cast<double>(h.beta1), static_cast<double>(t));
    const double bc2 = 1.0 - pow(static_cast<double>(h.beta2), static_cast<double>(t));
    const double step_size = static_cast<double>(lr) / bc1;
    const double decay = 1.0 - static_cast<double>(lr) * static_cast<double>(weight_decay);
    const bool wd = weight_decay != 0.0F;
    return {static_cast<float>(-step_size), static_cast<float>(sqrt(bc2)), weight_decay,
            static_cast<float>(decay),
            (h.maximize ? kMaximize : 0U) | (wd && !h.decoupled ? kL2 : 0U) |
                (wd && h.decoupled ? kDecoupled : 0U) | (h.amsgrad ? kAmsgrad : 0U)};
  }
  CUTRAIN_HD static void update(const Hyper& h, const Prepared& s, float& p, float g,
                                float (&st)[kSlots]) {
    g = (s.bits & kMaximize) ? -g : g;  // Note [branch-free rules]
    g = (s.bits & kL2) ? fmaf(s.weight_decay, p, g) : g;
    p = (s.bits & kDecoupled) ? p * s.decay : p;
    // m <- beta1 m + (1 - beta1) g ; v <- beta2 v + (1 - beta2) g^2 : one rounding of the
    // product, then one fused multiply-add each.
    st[0] = fmaf(1.0F - h.beta1, g, st[0] * h.beta1);
    st[1] = fmaf((1.0F - h.beta2) * g, g, st[1] * h.beta2);
    const bool amsgrad = (s.bits & kAmsgrad) != 0;
    // torch.maximum propagates NaN (fmaxf would drop it), and compare-selects vectorize.
    const float a = st[2], b = st[1];
    const float vmax = a != a ? a : (b != b ? b : (a > b ? a : b));
    st[2] = amsgrad ? vmax : st[2];
    const float v = amsgrad ? vmax : st[1];
    const float denom = sqrtf(v) / s.bc2_sqrt + h.eps;
    p = p + s.neg_step_size * st[0] / denom;  // addcdiv: p + value * m / denom
  }
};

}  // namespace cutrain::rules
