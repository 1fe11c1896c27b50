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

}  // namespace cutrain::kernels
