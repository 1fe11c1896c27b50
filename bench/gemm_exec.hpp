#pragma once
// The layer backend's execution context for benchmarks that time bare GEMMs next to a layer
// (bench_layers, bench_conv): on CUDA a cuBLAS handle bound to the benchmark's stream, in TF32
// math when the layers run in tf32 (Note [TF32 switch]), so both sides do the same arithmetic.

#include <memory>

#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"
#include "src/nn/backend.hpp"
#if CUTRAIN_BENCH_WITH_CUDA
#include "src/cuda/handles.hpp"
#endif

namespace cutrain::bench {

class GemmExec {
 public:
  GemmExec(Device device, NativeStream stream, bool tf32 = false) : exec_{device, stream, nullptr} {
#if CUTRAIN_BENCH_WITH_CUDA
    if (device.is_cuda()) {
      cublas_ = std::make_unique<detail::CublasHandle>(device.ordinal());
      cublas_->set_stream(stream);
      cublas_->set_tf32(tf32);
      exec_.cublas = cublas_->get();
    }
#else
    (void)tf32;
#endif
  }
  const nn::backend::Exec& get() const {
    return exec_;
  }

 private:
  nn::backend::Exec exec_;
#if CUTRAIN_BENCH_WITH_CUDA
  std::unique_ptr<detail::CublasHandle> cublas_;
#endif
};

}  // namespace cutrain::bench
