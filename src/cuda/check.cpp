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

}  // namespace cutrain::detail
