#pragma once
// Status checks for the CUDA runtime and cuBLAS (cuRAND: src/rng/curand_generator.hpp) (only in
// CUTRAIN_WITH_CUDA builds). A failure throws cutrain::Error naming the call, file:line and the
// library's error string.

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cutrain/error.hpp"

namespace cutrain::detail {

[[noreturn]] void throw_cuda(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace cutrain::detail

#define CUTRAIN_CUDA_CHECK(call)                                                 \
  do {                                                                           \
    const cudaError_t cutrain_status_ = (call);                                  \
    if (cutrain_status_ != cudaSuccess)                                          \
      ::cutrain::detail::throw_cuda(cutrain_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUTRAIN_CUBLAS_CHECK(call)                                                 \
  do {                                                                             \
    const cublasStatus_t cutrain_status_ = (call);                                 \
    if (cutrain_status_ != CUBLAS_STATUS_SUCCESS)                                  \
      ::cutrain::detail::throw_cublas(cutrain_status_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations without synchronizing.
#define CUTRAIN_CUDA_CHECK_LAUNCH() CUTRAIN_CUDA_CHECK(cudaGetLastError())
