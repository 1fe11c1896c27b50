#pragma once
// Note [step control block] (docs/ARCHITECTURE.md): the per-step scalars that the step kernels
// read and write through one pointer to device memory - never passed by value - so that a step
// captured in a CUDA graph replays correctly and the eager path runs the very same code. Built:
// the step counters, the groups' learning rates and the dynamic loss scale; the epoch-record slot
// and dropout's position join it with the whole-step graph (the table in docs/ARCHITECTURE.md).
//
// Note [learning rate in device memory]: each group's lr x lr_scale (the product computed on the
// host in float, the very value that used to be passed by value) is written into the block by
// Optimizer::commit_lr - on a GPU by a one-thread-block kernel on the step's stream, so it is
// ordered with the steps around it - only when it changed since the last write. step() commits
// before its launch; a caller that replays a captured step commits between replays, outside the
// capture (as torch.optim's capturable mode fills its lr tensor), and the replayed step reads the
// new value. A per-iteration schedule thus costs one small launch per eager step.
//
// Note [device step counter]: the number of applied steps t lives here, so that a step skipped on
// the device (StepGuard::skip) leaves t unchanged, as PyTorch leaves its state untouched when a
// step is skipped, and bias corrections computed in-kernel from t stay right. Every thread of a
// step reads t before its block takes a ticket; the block with the last ticket (Note [last block
// finishes]) - the only writer - then updates the counts in place and resets the ticket. So one
// copy of the counts serves every launch: no slot that alternates with the steps issued, which a
// captured graph would freeze. The CPU loop updates them after its loop (finish_step below).
//
// Note [dynamic loss scale]: torch.cuda.amp.GradScaler's rules on the device. The loss's backward
// seeds its gradient with S = loss_scale (read here), so every gradient is S times the true one;
// the clip norm's finish (rules::finish, kernels/clip/norm.cuh) divides by S - exactly: S is a
// power of two - to get the norm of the unscaled gradient, flags a non-finite one, and hands the
// step the factor clip x 1/S. Then, in finish_step, as _amp_update_scale_:
//   non-finite gradient:  S <- S x backoff_factor, growth_count <- 0        (the step is skipped)
//   otherwise:            growth_count + 1 == growth_interval ? S <- S x growth_factor unless that
//                         is infinite, growth_count <- 0  :  growth_count <- growth_count + 1
// growth_interval == 0 means no dynamic scaling: S stays 1 and the factor is the clip coefficient.
// Since S, growth_factor and backoff_factor are powers of two (Optimizer::enable_loss_scaling
// checks), S x g and g / S are exact for every normal g: the unscaled gradient, its norm, the step
// and so the whole run are bit-identical to an unscaled one until a gradient overflows.

#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::optim {

/// Parameter groups a fused step handles (an arena's groups, each with its own lr and decay).
inline constexpr int kMaxStepGroups = 8;

/// The device-resident per-step state of an Optimizer (Note [step control block]).
struct StepControl {
  std::int32_t applied = 0;       ///< steps applied: t, the bias corrections' count, after them
  std::int32_t skipped = 0;       ///< steps the non-finite guard skipped
  std::uint32_t done = 0;         ///< GPU: the finishing ticket; 0 between launches
  std::uint32_t reserved = 0;     ///< padding to 16 bytes
  float lr[kMaxStepGroups] = {};  ///< each group's lr x lr_scale (Optimizer::commit_lr)
  // Note [dynamic loss scale]: the state, then the rules (written once, by enable_loss_scaling).
  float loss_scale = 1.0F;           ///< S: the loss's backward multiplies its gradient by it
  std::int32_t growth_count = 0;     ///< clean steps since S last changed
  std::int32_t growth_interval = 0;  ///< clean steps before S grows; 0: no dynamic scaling
  float growth_factor = 2.0F;        ///< S x this after growth_interval clean steps
  float backoff_factor = 0.5F;       ///< S x this on a non-finite gradient
};

/// The counts after a step: t + 1 applied, or one more skipped (t unchanged); then the loss
/// scale's update (Note [dynamic loss scale]).
CUTRAIN_HD void finish_step(StepControl& c, bool skipped) {
  if (skipped)
    ++c.skipped;
  else
    ++c.applied;
  if (c.growth_interval <= 0) return;
  if (skipped) {
    c.loss_scale *= c.backoff_factor;
    c.growth_count = 0;
  } else if (c.growth_count + 1 == c.growth_interval) {
    const float grown = c.loss_scale * c.growth_factor;
    // grown - grown is 0 for finite values, NaN for inf: GradScaler never grows S to inf.
    if (grown - grown == 0.0F) c.loss_scale = grown;
    c.growth_count = 0;
  } else {
    ++c.growth_count;
  }
}

}  // namespace cutrain::optim
