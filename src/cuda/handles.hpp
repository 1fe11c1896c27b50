#pragma once
// RAII owners of library handles (CUTRAIN_WITH_CUDA builds).

#include <cublas_v2.h>

#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::detail {

// One cuBLAS handle bound to a device; set_stream() before each use from another stream.
class CublasHandle {
 public:
  explicit CublasHandle(int ordinal);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  cublasHandle_t get() const { return handle_; }
  void set_stream(NativeStream stream);
  // Note [TF32 switch] (cutrain/nn/sequential.hpp): TF32 tensor-core math for fp32 GEMMs, or not.
  void set_tf32(bool on);

 private:
  cublasHandle_t handle_ = nullptr;
  int ordinal_ = 0;
};

}  // namespace cutrain::detail
