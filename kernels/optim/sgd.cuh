#pragma once
// The SGD update rule (formula and PyTorch notes: include/cutrain/optim/sgd.hpp).

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

struct Sgd {
  static constexpr int kSlots = 1;  // momentum_buffer
  // Note [option bits]
  enum : unsigned { kMaximize = 1, kDecay = 2, kMomentum = 4, kNesterov = 8, kFirst = 16 };
  static constexpr int kBits = 5;
  static constexpr unsigned slots(unsigned bits) { return (bits & kMomentum) ? 1U : 0U; }
  struct Hyper {
    float momentum;
    float dampening;
    bool nesterov;
    bool maximize;
  };
  struct Prepared {
    float lr;
    float weight_decay;
    unsigned bits;
  };
  CUTRAIN_HD static Prepared prepare(const Hyper& h, float lr, float weight_decay, int t) {
    // kFirst: PyTorch seeds the buffer with g on the first step (no dampening there).
    return {lr, weight_decay,
            (h.maximize ? kMaximize : 0U) | (weight_decay != 0.0F ? kDecay : 0U) |
                (h.momentum != 0.0F ? kMomentum : 0U) | (h.nesterov ? kNesterov : 0U) |
                (t == 1 ? kFirst : 0U)};
  }
  CUTRAIN_HD static void update(const Hyper& h, const Prepared& s, float& p, float g,
                                float (&st)[kSlots]) {
    // Note [branch-free rules]: options are selects.
    g = (s.bits & kMaximize) ? -g : g;
    g = (s.bits & kDecay) ? fmaf(s.weight_decay, p, g) : g;
    const float b = (s.bits & kFirst) ? g : fmaf(1.0F - h.dampening, g, st[0] * h.momentum);
    const bool momentum = (s.bits & kMomentum) != 0;
    st[0] = momentum ? b : st[0];
    g = momentum ? ((s.bits & kNesterov) ? fmaf(h.momentum, b, g) : b) : g;
    p = fmaf(-s.lr, g, p);
  }
};

}  // namespace cutrain::rules
