#pragma once
// The trainer's console output on stderr: a progress bar redrawn in place on a terminal, and one
// line per epoch.

#include <cstdint>

#include "cutrain/train/trainer.hpp"

namespace cutrain::train::detail {

// `done` of `total` batches of `epoch` (1-based) after `elapsed_s` seconds; `loss` is the last
// loss read (NaN: none read yet).
void draw_progress(std::int64_t epoch, std::int64_t done, std::int64_t total, double loss,
                   std::int64_t samples, double elapsed_s);
void clear_progress();
void print_epoch(const EpochMetrics& m);

}  // namespace cutrain::train::detail
