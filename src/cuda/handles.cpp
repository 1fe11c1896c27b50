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

CurandGenerator::CurandGenerator(Device device, std::uint64_t seed, std::uint64_t offset)
    : device_(device) {
  require_usable(device);
  if (device.is_cpu()) {
    CUTRAIN_CURAND_CHECK(curandCreateGeneratorHost(&gen_, CURAND_RNG_PSEUDO_PHILOX4_32_10));
  } else {
    cuda::DeviceGuard guard(device.ordinal());
    CUTRAIN_CURAND_CHECK(curandCreateGenerator(&gen_, CURAND_RNG_PSEUDO_PHILOX4_32_10));
  }
  try {
    CUTRAIN_CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(gen_, seed));
    CUTRAIN_CURAND_CHECK(curandSetGeneratorOffset(gen_, offset));
  } catch (...) {
    curandDestroyGenerator(gen_);
    throw;
  }
}

CurandGenerator::~CurandGenerator() {
  if (gen_ != nullptr) curandDestroyGenerator(gen_);
}

void CurandGenerator::set_stream(NativeStream stream) {
  if (device_.is_cuda()) CUTRAIN_CURAND_CHECK(curandSetStream(gen_, stream));
}

void CurandGenerator::uniform(float* out, std::size_t n) {
  if (device_.is_cuda()) {
    cuda::DeviceGuard guard(device_.ordinal());
    CUTRAIN_CURAND_CHECK(curandGenerateUniform(gen_, out, n));
  } else {
    CUTRAIN_CURAND_CHECK(curandGenerateUniform(gen_, out, n));
  }
}

}  // namespace cutrain::detail
