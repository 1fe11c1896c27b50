#pragma once
// The one place a fused optimizer step picks its backend.

#include "cutrain/device.hpp"
#include "cutrain/error.hpp"
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
    // (Optimizer::step with a GradClipper runs the clipper first on the CPU.)
    CUTRAIN_CHECK(args.norm.partials == nullptr, "a fused clip step reached the CPU loop");
    cpu::optimizer_step(args);
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    if (args.norm.partials != nullptr) kernels::launch_clip_step(args, stream);
                    else kernels::launch_optimizer_step(args, stream));
  }
}

// Note [learning rate in device memory]: control->lr[0, n) = lr, ordered on `stream` (the CPU
// block is host memory, and CPU steps run in program order).
inline void write_step_lr(Device device, StepControl* control, const float* lr, int n,
                          [[maybe_unused]] NativeStream stream) {
  if (device.is_cpu()) {
    for (int i = 0; i < n; ++i) control->lr[i] = lr[i];
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::StepLr values{}; for (int i = 0; i < n; ++i) values.lr[i] = lr[i];
                    kernels::launch_write_step_lr(control, values, n, stream));
  }
}

}  // namespace cutrain::optim
