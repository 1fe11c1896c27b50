#pragma once
// The layer family's backend dispatch: each function runs the CPU twin (OpenMP loops calling the
// shared rules, OpenBLAS for GEMM) or launches the CUDA kernel (cuBLAS for GEMM). Layers call
// these and nothing backend-specific.

#include <cstddef>
#include <cstdint>

#include "cutrain/device.hpp"
#include "cutrain/precision.hpp"
#include "cutrain/stream.hpp"
#include "kernels/common/half.cuh"
#include "kernels/nn/activation.cuh"
#include "kernels/nn/loss.cuh"

namespace cutrain::nn::backend {

// Where an op runs: the device, its stream, and (CUDA) the cuBLAS handle to use.
struct Exec {
  Device device;
  NativeStream stream = nullptr;
  void* cublas = nullptr;  // cublasHandle_t, bound to `stream` by the caller
  void* lt = nullptr;      // detail::LtMatmul (src/cuda/lt_matmul.hpp); null: no fused epilogue
  // Note [16-bit values in fp32 storage]: bf16 / fp16 - the GEMMs' operands are 16-bit values,
  // so a GPU may multiply them on 16-bit tensor cores (exact conversions, fp32 accumulation).
  Precision precision = Precision::kFp32;
};

// Note [16-bit stores] (kernels/common/half.cuh): how the passes that write a layer's output or
// input gradient store in a model of this precision - rounded to its 16-bit format, or exact.
inline rules::Store store_of(const Exec& e) {
  return e.precision == Precision::kBf16   ? rules::Store::kBf16
         : e.precision == Precision::kFp16 ? rules::Store::kFp16
                                           : rules::Store::kExact;
}

// Row-major GEMM: C[m, n] = alpha op(A) op(B) + beta C, op(X) = X or X^T; lda/ldb/ldc are the
// row lengths of A, B, C as stored.
//
// Note [row-major GEMM on cuBLAS]: cuBLAS is column-major, and a row-major matrix read as
// column-major is its transpose. So C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in
// column-major: cublasSgemm(opB, opA, n, m, k, B, ldb, A, lda, C, ldc) with the same op flags
// and the same leading dimensions. This is the only place that knows it.
void gemm(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
          float beta, float* c, std::int64_t ldc);

// (with e.precision bf16 / fp16 on the GPU: cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_16BF /
// _16F - the operands, 16-bit values, converted exactly - instead of cublasSgemm).

// `count` GEMMs of one shape, the i-th over a + i stride_a, b + i stride_b, c + i stride_c (a
// grouped convolution's per-group blocks: Note [grouped convolution]): on the GPU one
// cublasSgemmStridedBatched (GemmStridedBatchedEx in bf16 / fp16) instead of `count` launches;
// on the CPU gemm after gemm.
void gemm_strided(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                  std::int64_t k, float alpha, const float* a, std::int64_t lda,
                  std::int64_t stride_a, const float* b, std::int64_t ldb, std::int64_t stride_b,
                  float beta, float* c, std::int64_t ldc, std::int64_t stride_c,
                  std::int64_t count);

// C[m, n] = op(A) op(B) + bias (bias[j] added to column j of every row; C's rows contiguous,
// ldc == n). On the GPU one cuBLASLt matmul with the bias in its epilogue where cuBLASLt has an
// algorithm for the case (Note [bias in the GEMM epilogue]), else gemm then add_bias - always
// so on the CPU.
void gemm_bias(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
               std::int64_t k, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
               float* c, std::int64_t ldc, const float* bias);

// out = relu(op(A) op(B) + bias) (Note [Linear and ReLU in one GEMM]): one cuBLASLt call with the
// RELU_BIAS epilogue on the GPU where it has an algorithm - then `pre` is not written - else
// pre = gemm_bias(...) and out = relu(pre). Returns whether `pre` holds the pre-activation.
bool gemm_bias_relu(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                    std::int64_t k, const float* a, std::int64_t lda, const float* b,
                    std::int64_t ldb, float* pre, float* out, std::int64_t ldc, const float* bias);

void activation_forward(const Exec& e, rules::Activation a, float slope, const float* x, float* y,
                        std::size_t n);
void activation_backward(const Exec& e, rules::Activation a, float slope, const float* x,
                         const float* y, const float* dy, float* dx, std::size_t n);
void add_bias(const Exec& e, float* y, const float* bias, std::int64_t rows, std::int64_t cols);
void column_sum(const Exec& e, const float* x, std::int64_t rows, std::int64_t cols, float* out);
// Note [dropout from the counter] (kernels/nn/dropout.cuh): mask[i] from the Philox stream of
// `seed` (inverted dropout: 0 or 1 / (1 - p)) and y = x * mask, in one pass (x and y may be the
// same array). Element i draws number position + i in one process; on a replica, the number of
// its row in the global batch (Note [replica rows]: `rows`). position = *count x stride, *count
// read where it lives - on the device on a GPU (Note [forward count in device memory]).
void dropout_forward(const Exec& e, std::uint64_t seed, const std::uint64_t* count,
                     std::uint64_t stride, const rules::DropoutRows& rows, float* mask,
                     const float* x, float* y, std::size_t n, float p,
                     rules::Store store = rules::Store::kExact);
// ++*count on the model's device, ordered on its stream (Note [forward count in device memory]).
void count_forward(const Exec& e, std::uint64_t* count);
// y[i] = x[i] rounded to the nearest 16-bit value (rules::round_half); x and y may be the same.
void round_half(const Exec& e, rules::Half kind, const float* x, float* y, std::size_t n);
// y[i] = the 16-bit value h[i] (rules::from_half) as a float: exact (Note [16-bit compute copy]).
void widen_half(const Exec& e, rules::Half kind, const std::uint16_t* h, float* y, std::size_t n);
// out[i] = a[i] * b[i] (stored as `store` says); add: a[i] + b[i] (out may be a or b).
void multiply(const Exec& e, const float* a, const float* b, float* out, std::size_t n,
              rules::Store store = rules::Store::kExact);
void add(const Exec& e, const float* a, const float* b, float* out, std::size_t n);
// out[i] = (a[i] + b[i]) / 2 (rules::mean_of_two, Note [test-time flips]); out may be a or b.
void mean_of_two(const Exec& e, const float* a, const float* b, float* out, std::size_t n);
void copy(const Exec& e, const float* src, float* dst, std::size_t n);
// Class weights for the cross-entropy (kernels/nn/loss.cuh), device memory: weights [classes],
// null for none; total, one float the batch's weight D is written to (needed with weights).
struct ClassWeights {
  const float* weights = nullptr;
  float* total = nullptr;
};
// Row losses into row_loss - to be divided by rows without weights, already over D with them
// (D computed first, into cw.total) - and dlogits when non-null. grad_seed (nullable, on the
// device): every gradient times *grad_seed, the loss scale (kernels/nn/loss.cuh).
void softmax_cross_entropy(const Exec& e, const float* logits, const std::int32_t* labels,
                           std::int64_t rows, int classes, float eps, ClassWeights cw,
                           float* row_loss, float* dlogits, const float* grad_seed = nullptr);
// softmax_cross_entropy into row_loss, then mean(row_loss, rows, divisor, out, also) (divisor:
// rows, or 1 with weights): on the GPU one launch for batches up to kernels::kLossMeanRows rows,
// with the same bits (Note [loss and mean in one block]); row_loss is then not written.
void softmax_cross_entropy_mean(const Exec& e, const float* logits, const std::int32_t* labels,
                                std::int64_t rows, int classes, float eps, ClassWeights cw,
                                float* row_loss, float* dlogits, float* out, float* also = nullptr,
                                const float* grad_seed = nullptr);
void mse(const Exec& e, const float* y, const float* t, std::size_t n, float* sq, float* grad,
         const float* grad_seed = nullptr);
// *out (and *also, when given) = sum(x) / divisor
void mean(const Exec& e, const float* x, std::size_t n, double divisor, float* out,
          float* also = nullptr);
// sums += this batch's loss x weight, its weight and its correct rows (Note [evaluation on the
// device]); batch_weight (device, nullable): the batch's D with class weights, else rows count.
// labels null (a regression batch): the loss only.
void eval_accumulate(const Exec& e, const float* logits, const std::int32_t* labels,
                     std::int64_t rows, int classes, const float* mean_loss,
                     const float* batch_weight, rules::EvalSums* sums);

}  // namespace cutrain::nn::backend
