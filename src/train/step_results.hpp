#pragma once
// An epoch's step results, summed for its metrics.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "cutrain/data/loader.hpp"
#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"
#include "kernels/train/records.cuh"

namespace cutrain::train::detail {

// Note [epoch records on the device] (kernels/train/records.cuh): appends the batch's loss (and
// norm) at the device's slot, on `stream`.
void record_step(Device device, const rules::StepRecords& records, NativeStream stream);

struct StepSums {
  double loss = 0;  // over the micro-batches of applied steps
  double norm = 0;  // over the applied optimizer steps
  std::int64_t losses = 0;
  std::int64_t norms = 0;
};

// losses[i]: batch i's mean loss. norms[i]: the pre-clip gradient norm of the optimizer step that
// ends at batch i, where one does (Note [gradient accumulation]: batches [j A, (j + 1) A) make a
// step, the last group of the epoch possibly fewer; the other entries are not read). A step
// skipped for a non-finite norm counts for neither mean, nor do its batches' losses.
inline StepSums sum_steps(std::span<const float> losses, std::span<const float> norms,
                          std::int64_t accumulate) {
  StepSums s;
  const auto n = static_cast<std::int64_t>(losses.size());
  for (std::int64_t begin = 0; begin < n; begin += accumulate) {
    const std::int64_t end = std::min(begin + accumulate, n);
    const float norm = norms[static_cast<std::size_t>(end - 1)];
    if (!std::isfinite(norm)) continue;
    for (std::int64_t i = begin; i < end; ++i) s.loss += losses[static_cast<std::size_t>(i)];
    s.losses += end - begin;
    s.norm += norm;
    ++s.norms;
  }
  return s;
}

// Note [divergence ends the run] (src/train/trainer.cpp): how many optimizer steps at the end of
// the epoch the non-finite guard skipped (their norm is not finite), and the streak that means
// the run diverged.
inline constexpr std::int64_t kDivergedStreak = 8;
inline std::int64_t diverged_streak(std::int64_t steps) {
  return std::max<std::int64_t>(1, std::min(kDivergedStreak, (steps + 1) / 2));
}
inline std::int64_t trailing_skipped(std::span<const float> norms, std::int64_t accumulate) {
  const auto n = static_cast<std::int64_t>(norms.size());
  std::int64_t streak = 0;
  // Steps end at batches accumulate - 1, 2 accumulate - 1, ... and at the epoch's last batch.
  for (std::int64_t end = n; end > 0; end = ((end - 1) / accumulate) * accumulate) {
    if (std::isfinite(norms[static_cast<std::size_t>(end - 1)])) break;
    ++streak;
  }
  return streak;
}
// The epoch's trailing streak of skipped steps when it is long enough to mean divergence (of the
// epoch's steps: data::groups_of its batches by `accumulate`), else 0.
inline std::int64_t diverged_steps(std::span<const float> norms, std::int64_t accumulate) {
  const auto batches = static_cast<std::int64_t>(norms.size());
  const std::int64_t steps = data::groups_of(batches, accumulate);
  const std::int64_t streak = trailing_skipped(norms, accumulate);
  return batches > 0 && streak >= diverged_streak(steps) ? streak : 0;
}

}  // namespace cutrain::train::detail
