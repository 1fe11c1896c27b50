#pragma once
// Host-callable launcher of the fused optimizer step (CUTRAIN_WITH_CUDA builds), instantiated
// in kernels/optim/step.cu for every rule in kernels/optim/*.cuh.

#include "cutrain/stream.hpp"
#include "kernels/optim/step_args.hpp"

namespace cutrain::kernels {

template <class Rule>
void launch_optimizer_step(const StepArgs<Rule>& args, NativeStream stream);

// args.norm set: the norm and the step, in one cooperative launch where the arena fits one
// resident grid, else the norm kernel then the step kernel (Note [clip and step in one launch]).
template <class Rule>
void launch_clip_step(const StepArgs<Rule>& args, NativeStream stream);

// Fused launches so far in this process (tests and benchmarks check the path they measure).
std::int64_t fused_clip_step_launches();

// The most 16-byte vectors per thread the one-launch clip step may hold (Note [clip and step in
// one launch]): 0 always runs two launches; 1, 2 or 4. The default is 2, or the environment's
// CUTRAIN_FUSED_CLIP_STEP when set. For tests and side-by-side measurements.
void set_fused_clip_step_max_vectors(int r);
int fused_clip_step_max_vectors();

}  // namespace cutrain::kernels
