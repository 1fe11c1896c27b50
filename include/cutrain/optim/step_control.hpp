#pragma once
// Note [step control block] (docs/ARCHITECTURE.md): the per-step scalars that the step kernels
// read and write through one pointer to device memory - never passed by value - so that a step
// captured in a CUDA graph replays correctly and the eager path runs the very same code. Built:
// the step counters and the groups' learning rates; the loss scale and the epoch-record slot join
// it with mixed precision and the whole-step graph (the table in docs/ARCHITECTURE.md).
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
};

/// The counts after a step: t + 1 applied, or one more skipped (t unchanged).
CUTRAIN_HD void finish_step(StepControl& c, bool skipped) {
  if (skipped)
    ++c.skipped;
  else
    ++c.applied;
}

}  // namespace cutrain::optim
