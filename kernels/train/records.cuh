#pragma once
// Note [epoch records on the device]: each batch's mean loss and each step's pre-clip norm go
// into the epoch's arrays on the device, read once at the epoch's end (no host wait per step).
// The loss kernel and the clip norm write the batch's two values to fixed places, and one
// one-thread pass appends them at the slot the device holds and advances it. So nothing in the
// step depends on the batch's index on the host, and a step captured in a CUDA graph records
// into the next slot on every replay; the trainer writes the slot only at an epoch's start (or
// a mid-epoch resume's).

#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

/// The epoch's records and where the next batch's go (all in the trainer's device memory).
struct StepRecords {
  const float* loss = nullptr;  ///< the batch's mean loss (the loss kernel's value_out)
  const float* norm = nullptr;  ///< the step's pre-clip norm; null: no step ends at this batch
  float* losses = nullptr;      ///< [batches per epoch]
  float* norms = nullptr;  ///< [batches per epoch]; entries where no step ends stay as they are
  std::int64_t* slot = nullptr;  ///< the batch's index in the epoch
};

CUTRAIN_HD void record_step(const StepRecords& r) {
  const std::int64_t k = *r.slot;
  r.losses[k] = *r.loss;
  if (r.norm != nullptr) r.norms[k] = *r.norm;
  *r.slot = k + 1;
}

}  // namespace cutrain::rules
