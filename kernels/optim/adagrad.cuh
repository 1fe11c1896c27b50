#pragma once
// The AdaGrad update rule (formula and PyTorch notes: include/cutrain/optim/adagrad.hpp).

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

struct Adagrad {
  static constexpr int kSlots = 1;                // sum
  enum : unsigned { kMaximize = 1, kDecay = 2 };  // Note [option bits]
  static constexpr int kBits = 2;
  static constexpr unsigned slots(unsigned) { return 1U; }
  struct Hyper {
    float lr_decay;
    float eps;
    bool maximize;
  };
  struct Prepared {
    float neg_clr;
    float weight_decay;
    unsigned bits;
  };
  // clr in double, as PyTorch computes it in Python floats.
  CUTRAIN_HD static Prepared prepare(const Hyper& h, float lr, float weight_decay, int t) {
    const double clr = static_cast<double>(lr) / (1.0 + (t - 1) * static_cast<double>(h.lr_decay));
    return {static_cast<float>(-clr), weight_decay,
            (h.maximize ? kMaximize : 0U) | (weight_decay != 0.0F ? kDecay : 0U)};
  }
  CUTRAIN_HD static void update(const Hyper& h, const Prepared& s, float& p, float g,
                                float (&st)[kSlots]) {
    g = (s.bits & kMaximize) ? -g : g;  // Note [branch-free rules]
    g = (s.bits & kDecay) ? fmaf(s.weight_decay, p, g) : g;
    st[0] = fmaf(g, g, st[0]);
    const float std = sqrtf(st[0]) + h.eps;
    p = p + s.neg_clr * g / std;  // addcdiv: p + value * g / std
  }
};

}  // namespace cutrain::rules
