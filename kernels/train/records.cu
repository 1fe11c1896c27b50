// Note [epoch records on the device]: one thread; the values it copies were written by the
// kernels before it on the stream.
#include "kernels/train/records.hpp"
#include "src/cuda/check.hpp"

namespace cutrain::kernels {

namespace {
__global__ void record_step_kernel(const rules::StepRecords records) {
  rules::record_step(records);
}
}  // namespace

void launch_record_step(const rules::StepRecords& records, NativeStream stream) {
  record_step_kernel<<<1, 1, 0, stream>>>(records);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
