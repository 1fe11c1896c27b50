#include "src/cuda/handles.hpp"

#include "src/cuda/check.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain::detail {

CublasHandle::CublasHandle(int ordinal) : ordinal_(ordinal) {
  require_usable(Device::cuda(ordinal));
  cuda::DeviceGuard guard(ordinal);
  CUTRAIN_CUBLAS_CHECK(cublasCreate(&handle_));
}

CublasHandle::~CublasHandle() {
  if (handle_ != nullptr) cublasDestroy(handle_);
}

void CublasHandle::set_stream(NativeStream stream) {
  CUTRAIN_CUBLAS_CHECK(cublasSetStream(handle_, stream));
}

void CublasHandle::set_tf32(bool on) {
  // CUBLAS_DEFAULT_MATH is strict fp32 for cublasSgemm (no tensor-core downconversion).
  CUTRAIN_CUBLAS_CHECK(
      cublasSetMathMode(handle_, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

}  // namespace cutrain::detail
