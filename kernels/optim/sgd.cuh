#pragma once
// The SGD update rule (formula and PyTorch notes: include/cutrain/optim/sgd.hpp).

#include <cmath>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

struct Sgd {
  static constexpr int kSlots = 1;  // momentum_buffer
  struct Hyper {
    float momentum;
    float dampening;
    bool nesterov;
    bool maximize;
  };
  struct Prepared {
    float lr;
    float weight_decay;
    bool first;  // PyTorch seeds the buffer with g on the first step
  };
  CUTRAIN_HD static Prepared prepare(const Hyper&, float lr, float weight_decay, int t) {
    return {lr, weight_decay, t == 1};
  }
  CUTRAIN_HD static void update(const Hyper& h, const Prepared& s, float& p, float g,
                                float (&st)[kSlots]) {
    // Note [branch-free rules]: options are selects, so the CPU loop vectorizes.
    g = h.maximize ? -g : g;
    g = s.weight_decay != 0.0F ? fmaf(s.weight_decay, p, g) : g;
    const float b = s.first ? g : fmaf(1.0F - h.dampening, g, st[0] * h.momentum);
    const bool momentum = h.momentum != 0.0F;
    st[0] = momentum ? b : st[0];
    g = momentum ? (h.nesterov ? fmaf(h.momentum, b, g) : b) : g;
    p = fmaf(-s.lr, g, p);
  }
};

}  // namespace cutrain::rules
