#pragma once
// Host-callable launcher of the fused optimizer step (CUTRAIN_WITH_CUDA builds), instantiated
// in kernels/optim/step.cu for every rule in kernels/optim/*.cuh.

#include "cutrain/stream.hpp"
#include "kernels/optim/step_args.hpp"

namespace cutrain::kernels {

template <class Rule>
void launch_optimizer_step(const StepArgs<Rule>& args, NativeStream stream);

}  // namespace cutrain::kernels
