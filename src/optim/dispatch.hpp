#pragma once
// The one place a fused optimizer step picks its backend.

#include "cutrain/device.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#include "src/optim/step_cpu.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/optim/optim.hpp"
#endif

namespace cutrain::optim {

template <class Rule>
void run_step(Device device, const kernels::StepArgs<Rule>& args,
              [[maybe_unused]] NativeStream stream) {
  if (device.is_cpu()) {
    cpu::optimizer_step(args);
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::launch_optimizer_step(args, stream));
  }
}

}  // namespace cutrain::optim
