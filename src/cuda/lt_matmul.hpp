#pragma once
// Note [bias in the GEMM epilogue]: on the GPU, Linear's forward y = x W^T + b is one cuBLASLt
// matmul with the BIAS epilogue (the bias added to each output row as the GEMM writes it) instead
// of cublasSgemm followed by the bias-add kernel: one launch and one pass over y fewer per layer.
// The arithmetic is the same - the fp32 accumulator rounded, plus the bias, rounded (PyTorch's
// addmm takes the same cuBLASLt path for its Linear on CUDA) - though cuBLASLt may pick another
// GEMM kernel than cublasSgemm, whose accumulation order may differ; the CPU/GPU comparisons
// allow for that already (GEMM orders differ between OpenBLAS and cuBLAS anyway).
//
// A plan (descriptors and the heuristic's algorithm) is made once per shape and pointer
// alignment and cached: the heuristic query costs tens of microseconds of host time, the step
// only a descriptor update. Where cuBLASLt has no algorithm for a case (heuristic: none; a
// pointer less than 16-byte aligned), gemm_bias returns false and the caller runs the two-pass
// path, so the fused path is an optimization, never a requirement. CUTRAIN_CUBLASLT=0 in the
// environment turns it off (for comparisons: bench_layers measures both).
//
// A Linear followed by ReLU takes the RELU_BIAS epilogue instead (Note [Linear and ReLU in one
// GEMM], src/nn/sequential.cpp). The bias gradient is not fused (BGRADB): the column-sum kernel
// adds each column's rows in the order the CPU does (Note [column sums in chunks]), which keeps
// bias gradients equal across the backends bit for bit; cuBLASLt's reduction order is its own.

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "cutrain/buffer.hpp"
#include "cutrain/precision.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::detail {

// One per model, like its cuBLAS handle; not for use from two threads at once.
class LtMatmul {
 public:
  explicit LtMatmul(int ordinal);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // Row-major C[m, n] = op(A)[m, k] op(B)[k, n] + bias[n] (each row of C gets the bias), as
  // nn::backend::gemm with alpha 1 and beta 0 (Note [row-major GEMM on cuBLAS]). Returns false
  // without doing anything when the fused path is off or cuBLASLt has no algorithm for the case.
  // relu: max(., 0) of that too (the RELU_BIAS epilogue: a Linear followed by ReLU).
  bool gemm_bias(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float* c,
                 std::int64_t ldc, const float* bias, NativeStream stream, bool relu = false);

  bool enabled() const { return enabled_; }
  void set_enabled(bool on) { enabled_ = on; }
  // Note [TF32 switch]: CUBLAS_COMPUTE_32F_FAST_TF32 instead of CUBLAS_COMPUTE_32F (plans redone).
  void set_tf32(bool on) { set_precision(on ? Precision::kTf32 : Precision::kFp32); }
  // The compute type of every plan: CUBLAS_COMPUTE_32F, or _FAST_TF32 (Note [TF32 switch]),
  // _FAST_16BF / _FAST_16F (Note [16-bit values in fp32 storage]: the operands hold 16-bit values,
  // converted exactly). Plans are redone.
  void set_precision(Precision precision);
  // Calls that ran fused, and calls handed back to the two-pass path (tests, benchmarks).
  std::int64_t fused_calls() const { return fused_; }
  std::int64_t fallbacks() const { return fallbacks_; }

 private:
  struct Plan;
  // trans_a, trans_b, m, n, k, lda, ldb, ldc, then the alignments of a, b, c and the bias, and
  // whether the epilogue applies ReLU
  using Key =
      std::tuple<bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                 std::int64_t, std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t, bool>;
  Plan* plan_for(const Key& key, const float* bias);

  cublasLtHandle_t handle_ = nullptr;
  Buffer workspace_;
  bool enabled_ = true;
  Precision precision_ = Precision::kFp32;
  std::int64_t fused_ = 0;
  std::int64_t fallbacks_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace cutrain::detail
