#pragma once
// Host-callable launcher of the epoch-record pass (CUTRAIN_WITH_CUDA builds).

#include "cutrain/stream.hpp"
#include "kernels/train/records.cuh"

namespace cutrain::kernels {

// Note [epoch records on the device]: rules::record_step on one thread, ordered on `stream`.
void launch_record_step(const rules::StepRecords& records, NativeStream stream);

}  // namespace cutrain::kernels
