#pragma once
// The layer backend's execution context for benchmarks that time bare GEMMs next to a layer
// (bench_layers, bench_conv): on CUDA a cuBLAS handle bound to the benchmark's stream, in TF32
// math when the layers run in tf32 (Note [TF32 switch]) and on the 16-bit tensor cores in bf16 /
// fp16 (Note [16-bit values in fp32 storage]), so both sides do the same arithmetic.

#include <memory>

#include "cutrain/device.hpp"
#include "cutrain/precision.hpp"
#include "cutrain/stream.hpp"
#include "src/nn/backend.hpp"
#if CUTRAIN_BENCH_WITH_CUDA
#include "src/cuda/handles.hpp"
#endif

namespace cutrain::bench {

class GemmExec {
 public:
  GemmExec(Device device, NativeStream stream, Precision precision = Precision::kFp32)
      : exec_{device, stream, nullptr} {
    exec_.precision = is_half(precision) ? precision : Precision::kFp32;
#if CUTRAIN_BENCH_WITH_CUDA
    if (device.is_cuda()) {
      cublas_ = std::make_unique<detail::CublasHandle>(device.ordinal());
      cublas_->set_stream(stream);
      cublas_->set_tf32(precision == Precision::kTf32);
      exec_.cublas = cublas_->get();
    }
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
