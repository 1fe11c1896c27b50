// Note [epoch records on the device] (kernels/train/records.cuh): the record pass's dispatch.
#include "cutrain/error.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#include "src/train/step_results.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/train/records.hpp"
#endif

namespace cutrain::train::detail {

void record_step(Device device, const rules::StepRecords& records,
                 [[maybe_unused]] NativeStream stream) {
  if (device.is_cpu()) {
    rules::record_step(records);
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::launch_record_step(records, stream));
  }
}

}  // namespace cutrain::train::detail
