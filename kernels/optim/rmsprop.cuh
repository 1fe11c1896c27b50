#pragma once
// The RMSProp update rule, with centered and Nesterov variants (formulas and PyTorch notes:
// include/cutrain/optim/rmsprop.hpp).

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

struct Rmsprop {
  static constexpr int kSlots = 3;  // square_avg, grad_avg, momentum_buffer
  // Note [option bits]
  enum : unsigned { kMaximize = 1, kDecay = 2, kCentered = 4, kMomentum = 8, kNesterov = 16 };
  static constexpr int kBits = 5;
  static constexpr unsigned slots(unsigned bits) {
    return 1U | ((bits & kCentered) ? 2U : 0U) | ((bits & kMomentum) ? 4U : 0U);
  }
  struct Hyper {
    float alpha;
    float eps;
    float momentum;
    bool centered;
    bool nesterov;
    bool maximize;
  };
  struct Prepared {
    float lr;
    float weight_decay;
    unsigned bits;
  };
  CUTRAIN_HD static Prepared prepare(const Hyper& h, float lr, float weight_decay, int) {
    return {lr, weight_decay,
            (h.maximize ? kMaximize : 0U) | (weight_decay != 0.0F ? kDecay : 0U) |
                (h.centered ? kCentered : 0U) | (h.momentum > 0.0F ? kMomentum : 0U) |
                (h.nesterov ? kNesterov : 0U)};
  }
  CUTRAIN_HD static void update(const Hyper& h, const Prepared& s, float& p, float g,
                                float (&st)[kSlots]) {
    g = (s.bits & kMaximize) ? -g : g;  // Note [branch-free rules]
    g = (s.bits & kDecay) ? fmaf(s.weight_decay, p, g) : g;
    const float one_minus_alpha = 1.0F - h.alpha;
    st[0] = fmaf(one_minus_alpha * g, g, st[0] * h.alpha);
    // Centered: subtract the squared mean gradient. PyTorch does not clamp sq - ga^2, so
    // neither do we (both EMAs start at zero, and sq >= ga^2 holds up to rounding).
    const bool centered = (s.bits & kCentered) != 0;
    const float ga = fmaf(one_minus_alpha, g, st[1] * h.alpha);
    st[1] = centered ? ga : st[1];
    const float avg = sqrtf(centered ? fmaf(-ga, ga, st[0]) : st[0]) + h.eps;
    // With momentum: b <- momentum b + g / avg, p <- p - lr b; Nesterov (Deep Learning book
    // Alg. 8.6, look-ahead form): p <- p - lr (g / avg + momentum b).
    const float step = g / avg;
    const float b = st[2] * h.momentum + step;
    const float p_momentum =
        (s.bits & kNesterov) ? fmaf(-s.lr, fmaf(h.momentum, b, step), p) : fmaf(-s.lr, b, p);
    const float p_plain = p + -s.lr * g / avg;  // addcdiv: p + value * g / avg
    const bool momentum = (s.bits & kMomentum) != 0;
    st[2] = momentum ? b : st[2];
    p = momentum ? p_momentum : p_plain;
  }
};

}  // namespace cutrain::rules
