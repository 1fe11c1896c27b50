#pragma once
// The step kernels' side of Note [device step counter] (cutrain/optim/step_control.hpp).

#include "cutrain/optim/step_control.hpp"

namespace cutrain::kernels {

// Called by every thread of every block after its last read of `control` (t) and its last
// update: the block takes a ticket (Note [last block finishes], kernels/clip/norm.cu), and the
// block with the last one - every other block has read t by then - updates the counts in place
// and resets the ticket for the next launch on the stream.
__device__ inline void finish_counts(optim::StepControl* control, bool skipped) {
  __syncthreads();  // every thread of the block is past its reads of t
  if (threadIdx.x != 0) return;
  __threadfence();
  if (atomicAdd(&control->done, 1U) != gridDim.x - 1) return;
  __threadfence();  // the last ticket: every other block has read t
  optim::finish_step(*control, skipped);
  control->done = 0;
}

}  // namespace cutrain::kernels
