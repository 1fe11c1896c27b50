#pragma once
// Note [weight averaging]: with TrainerOptions::ema_decay = d > 0 the trainer keeps an
// exponential moving average of the parameters, one arena shaped like them:
//   after the first optimizer step   ema = p
//   after every later step           ema = lerp(ema, p, 1 - d) = ema + (1 - d)(p - ema)
// - torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn(d), whose update is
// torch._foreach_lerp_(ema, p, 1 - d) after each step, and the same lerp (rules::lerp) bit for
// bit. One launch over one span per step. A step skipped for non-finite gradients leaves p as
// it was, and the average still takes it in, as a PyTorch loop calling update_parameters after
// every optimizer.step() does. Buffers (BatchNorm's running statistics) are not averaged: the
// averaged weights are evaluated with the model's own buffers (AveragedModel's use_buffers=False
// would evaluate with the buffers of its creation, stale by then). Validation evaluates the
// averaged weights, early stopping keeps them, and checkpoints carry them ("ema.<name>") with
// the update count, so a resume continues the average exactly.

#include <cstdint>

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/ops.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::train::detail {

class WeightAverage {
 public:
  WeightAverage(const Arena& params, float decay)
      : decay_(decay), average_(params.like()), trained_(params.like()) {}

  // After an optimizer step; `updates` counts them (TrainState::ema_updates).
  void update(const Arena& params, std::int64_t& updates, NativeStream stream) {
    const NativeStream s = params.device().is_cpu() ? nullptr : stream;
    if (updates == 0) {
      copy_bytes(average_.data(), params.device(), params.data(), params.device(),
                 params.total() * sizeof(float), s);
    } else {
      ops::lerp(1.0F - decay_, params, average_, s);
    }
    ++updates;
  }

  Arena& average() { return average_; }

  // Runs f() with the averaged weights in `params`, then puts the trained ones back. Waits for
  // `stream` first: the copies run on the null stream, which does not order against it.
  template <class F>
  auto with_average(Arena& params, Stream& stream, F&& f) {
    stream.synchronize();
    trained_.copy_from(params);
    params.copy_from(average_);
    try {
      auto result = f();
      params.copy_from(trained_);
      return result;
    } catch (...) {
      params.copy_from(trained_);
      throw;
    }
  }

 private:
  float decay_;
  Arena average_;
  Arena trained_;  // the trained weights while the average stands in for them
};

}  // namespace cutrain::train::detail
