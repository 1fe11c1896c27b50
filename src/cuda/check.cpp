#include "src/cuda/check.hpp"

namespace cutrain::detail {

void throw_cuda(cudaError_t status, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw_error(cat(call, " failed: ", cudaGetErrorName(status), ": ", cudaGetErrorString(status)),
              file, line);
}

void throw_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  throw_error(
      cat(call, " failed: ", cublasGetStatusName(status), ": ", cublasGetStatusString(status)),
      file, line);
}

const char* curand_status_string(curandStatus_t status) {
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

void throw_curand(curandStatus_t status, const char* call, const char* file, int line) {
  throw_error(cat(call, " failed: ", curand_status_string(status)), file, line);
}

}  // namespace cutrain::detail
