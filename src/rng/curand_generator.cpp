#include "src/rng/curand_generator.hpp"

#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"
#include "src/rng/philox_host.hpp"

namespace cutrain::detail {
namespace {

const char* status_string(curandStatus_t status) {
  switch (status) {
    case CURAND_STATUS_SUCCESS:
      return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH:
      return "CURAND_STATUS_VERSION_MISMATCH: header and library versions differ";
    case CURAND_STATUS_NOT_INITIALIZED:
      return "CURAND_STATUS_NOT_INITIALIZED: generator not initialized";
    case CURAND_STATUS_ALLOCATION_FAILED:
      return "CURAND_STATUS_ALLOCATION_FAILED: memory allocation failed";
    case CURAND_STATUS_TYPE_ERROR:
      return "CURAND_STATUS_TYPE_ERROR: wrong generator type";
    case CURAND_STATUS_OUT_OF_RANGE:
      return "CURAND_STATUS_OUT_OF_RANGE: argument out of range";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE:
      return "CURAND_STATUS_LENGTH_NOT_MULTIPLE: length must be a multiple of the dimension "
             "(normal: even)";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED:
      return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case CURAND_STATUS_LAUNCH_FAILURE:
      return "CURAND_STATUS_LAUNCH_FAILURE: kernel launch failed";
    case CURAND_STATUS_PREEXISTING_FAILURE:
      return "CURAND_STATUS_PREEXISTING_FAILURE: an earlier error is pending";
    case CURAND_STATUS_INITIALIZATION_FAILED:
      return "CURAND_STATUS_INITIALIZATION_FAILED: GPU initialization failed";
    case CURAND_STATUS_ARCH_MISMATCH:
      return "CURAND_STATUS_ARCH_MISMATCH: the GPU does not support this";
    case CURAND_STATUS_INTERNAL_ERROR:
      return "CURAND_STATUS_INTERNAL_ERROR";
  }
  return "unknown cuRAND status";
}

}  // namespace

void throw_curand(curandStatus_t status, const char* call, const char* file, int line) {
  throw_error(cat(call, " failed: ", status_string(status)), file, line);
}

CurandGenerator::CurandGenerator(Device device, std::uint64_t seed, std::uint64_t offset)
    : device_(device), seed_(seed), position_(offset) {
  require_usable(device);
  if (device.is_cpu()) return;  // cuRAND's host generator only if normal() needs it
  cuda::DeviceGuard guard(device.ordinal());
  CUTRAIN_CURAND_CHECK(curandCreateGenerator(&gen_, CURAND_RNG_PSEUDO_PHILOX4_32_10));
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

curandGenerator_t CurandGenerator::host_generator() {
  if (gen_ == nullptr) {
    CUTRAIN_CURAND_CHECK(curandCreateGeneratorHost(&gen_, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    CUTRAIN_CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(gen_, seed_));
    host_positioned_ = position_known_ && position_ == 0;  // a fresh generator is at 0
  }
  if (position_known_ && !host_positioned_) {
    CUTRAIN_CURAND_CHECK(curandSetGeneratorOffset(gen_, position_));
    host_positioned_ = true;
  }
  return gen_;
}

void CurandGenerator::set_stream(NativeStream stream) {
  if (device_.is_cuda()) CUTRAIN_CURAND_CHECK(curandSetStream(gen_, stream));
}

void CurandGenerator::set_offset(std::uint64_t offset) {
  if (device_.is_cuda()) {
    CUTRAIN_CURAND_CHECK(curandSetGeneratorOffset(gen_, offset));
    return;
  }
  position_ = offset;
  position_known_ = true;
  host_positioned_ = false;
}

void CurandGenerator::uniform(float* out, std::size_t n) {
  if (device_.is_cuda()) {
    cuda::DeviceGuard guard(device_.ordinal());
    CUTRAIN_CURAND_CHECK(curandGenerateUniform(gen_, out, n));
  } else if (position_known_) {
    philox_uniform_host(seed_, position_, out, n);  // Note [Philox on the host]
    position_ += n;
    host_positioned_ = false;
  } else {
    CUTRAIN_CURAND_CHECK(curandGenerateUniform(host_generator(), out, n));
  }
}

void CurandGenerator::normal(float* out, std::size_t n, float mean, float std) {
  if (device_.is_cuda()) {
    cuda::DeviceGuard guard(device_.ordinal());
    CUTRAIN_CURAND_CHECK(curandGenerateNormal(gen_, out, n, mean, std));
    return;
  }
  if (position_known_ && position_ % 2 == 0 && n % 2 == 0) {
    philox_normal_host(seed_, position_, mean, std, out, n);  // Note [Philox on the host]
    position_ += n;
    host_positioned_ = false;
    return;
  }
  CUTRAIN_CURAND_CHECK(curandGenerateNormal(host_generator(), out, n, mean, std));
  position_known_ = false;  // how an odd offset pairs its numbers is cuRAND's business
}

}  // namespace cutrain::detail
