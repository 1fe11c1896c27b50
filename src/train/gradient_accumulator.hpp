#pragma once
// Note [gradient accumulation]: with TrainerOptions::accumulate_steps = A, batches [j A, (j + 1) A)
// of an epoch (the last group possibly fewer) make one optimizer step. Each micro-batch's
// backward overwrites the gradient arena with the mean gradient over its r_i rows; the step uses
//   g = sum_i r_i g_i / sum_i r_i,
// the mean gradient over all the step's samples - what one batch of them gives when no layer
// depends on the batch (BatchNorm's statistics and dropout's masks are per micro-batch, as in
// PyTorch). Weighting by rows keeps a short last micro-batch from counting as much as a full one
// (PyTorch's usual `loss / A` recipe overweights it). The sum lives in one extra arena shaped
// like the gradients, so folding a micro-batch in is one axpy over one span. The all-reduce,
// the clip norm and the step run once per group; checkpoint_every, the LR schedule and
// TrainState::step count optimizer steps, and a mid-epoch checkpoint falls between groups.

#include <cstdint>

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/ops.hpp"

namespace cutrain::train::detail {

class GradientAccumulator {
 public:
  explicit GradientAccumulator(const Arena& gradients) : sum_(gradients.like()) {}

  // Folds one micro-batch's gradient (`grads`, the mean over its `rows`) into the step's, after
  // micro-batches of `rows_before` rows in all; the last one leaves in `grads` the mean gradient
  // over all the step's samples. No count is kept here: the arguments say it all, so a
  // captured CUDA graph replays a position with the scalars it was captured with.
  void add(Arena& grads, bool first, bool last, std::int64_t rows, std::int64_t rows_before,
           NativeStream stream) {
    const Device device = grads.device();
    const NativeStream s = device.is_cpu() ? nullptr : stream;
    if (first) {
      copy_bytes(sum_.data(), device, grads.data(), device, grads.total() * sizeof(float), s);
      ops::scale(static_cast<float>(rows), sum_, s);
      return;
    }
    if (!last) {
      ops::axpy(static_cast<float>(rows), grads, sum_, s);
      return;
    }
    const auto total = static_cast<float>(rows_before + rows);
    ops::scale(static_cast<float>(rows) / total, grads, s);
    ops::axpy(1.0F / total, sum_, grads, s);
  }

 private:
  Arena sum_;  // sum of rows x gradient over the step's earlier micro-batches
};

}  // namespace cutrain::train::detail
