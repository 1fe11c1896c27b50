#pragma once
// RAII owners of library handles (CUTRAIN_WITH_CUDA builds).

#include <cublas_v2.h>
#include <curand.h>

#include <cstdint>

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

 private:
  cublasHandle_t handle_ = nullptr;
  int ordinal_ = 0;
};

// A Philox4x32-10 generator. On the CPU it is cuRAND's host generator
// (curandCreateGeneratorHost), which needs no GPU and produces the same sequence as the device
// generator for the same seed and offset.
class CurandGenerator {
 public:
  CurandGenerator(Device device, std::uint64_t seed, std::uint64_t offset = 0);
  ~CurandGenerator();
  CurandGenerator(const CurandGenerator&) = delete;
  CurandGenerator& operator=(const CurandGenerator&) = delete;

  curandGenerator_t get() const { return gen_; }
  Device device() const { return device_; }
  void set_stream(NativeStream stream);
  // Fills `out` (on the generator's device) with n uniforms in (0, 1].
  void uniform(float* out, std::size_t n);

 private:
  curandGenerator_t gen_ = nullptr;
  Device device_;
};

}  // namespace cutrain::detail
