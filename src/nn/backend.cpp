// CPU twins and CUDA dispatch of the layer family (see backend.hpp).
#include "src/nn/backend.hpp"
#if CUTRAIN_WITH_CURAND
#include "src/rng/philox_host.hpp"
#endif

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "kernels/data/augment.cuh"  // rules::mean_of_two
#include "kernels/nn/column_sum.cuh"
#include "kernels/nn/loss.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cpu/vector_math.hpp"  // Note [vector math]
#include "src/cuda/dispatch.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/nn/nn.hpp"
#include "src/cuda/check.hpp"
#include "src/cuda/lt_matmul.hpp"
#endif

namespace cutrain::nn::backend {

// Every function below: `if CPU { loop } else { CUDA launch }` (Note [bit-identical backends]:
// the loop bodies and kernels call the same rules).
#define CUTRAIN_NN_DISPATCH(cpu_body, cuda_call) \
  if (e.device.is_cpu()) {                       \
    cpu_body;                                    \
  } else {                                       \
    CUTRAIN_ON_CUDA(cuda_call);                  \
  }

void gemm(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
          float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  CUTRAIN_NN_DISPATCH(
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                  trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                  static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                  beta, c, static_cast<int>(ldc)),
      // Note [row-major GEMM on cuBLAS]: swap the operands and the m/n sizes.
      if (is_half(e.precision)) {
        // Note [16-bit values in fp32 storage]: the operands hold 16-bit values, which the
        // FAST_16BF / _16F compute types convert exactly for the 16-bit tensor cores.
        CUTRAIN_CUBLAS_CHECK(cublasGemmEx(
            static_cast<cublasHandle_t>(e.cublas), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
            trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
            static_cast<int>(k), &alpha, b, CUDA_R_32F, static_cast<int>(ldb), a, CUDA_R_32F,
            static_cast<int>(lda), &beta, c, CUDA_R_32F, static_cast<int>(ldc),
            e.precision == Precision::kBf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                            : CUBLAS_COMPUTE_32F_FAST_16F,
            CUBLAS_GEMM_DEFAULT));
      } else {
        CUTRAIN_CUBLAS_CHECK(
            cublasSgemm(static_cast<cublasHandle_t>(e.cublas), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                        trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                        static_cast<int>(m), static_cast<int>(k), &alpha, b, static_cast<int>(ldb),
                        a, static_cast<int>(lda), &beta, c, static_cast<int>(ldc)));
      })
}

void gemm_strided(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                  std::int64_t k, float alpha, const float* a, std::int64_t lda,
                  std::int64_t stride_a, const float* b, std::int64_t ldb, std::int64_t stride_b,
                  float beta, float* c, std::int64_t ldc, std::int64_t stride_c,
                  std::int64_t count) {
  if (m == 0 || n == 0 || count == 0) return;
  if (count == 1 || e.device.is_cpu()) {  // the CPU: one GEMM after the other, as gemm runs them
    for (std::int64_t i = 0; i < count; ++i)
      gemm(e, trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
           c + i * stride_c, ldc);
    return;
  }
  // Note [row-major GEMM on cuBLAS]: swap the operands, their strides and the m/n sizes.
  CUTRAIN_ON_CUDA(
      if (is_half(e.precision)) {
        CUTRAIN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            static_cast<cublasHandle_t>(e.cublas), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
            trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
            static_cast<int>(k), &alpha, b, CUDA_R_32F, static_cast<int>(ldb), stride_b, a,
            CUDA_R_32F, static_cast<int>(lda), stride_a, &beta, c, CUDA_R_32F,
            static_cast<int>(ldc), stride_c, static_cast<int>(count),
            e.precision == Precision::kBf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                            : CUBLAS_COMPUTE_32F_FAST_16F,
            CUBLAS_GEMM_DEFAULT));
      } else {
        CUTRAIN_CUBLAS_CHECK(cublasSgemmStridedBatched(
            static_cast<cublasHandle_t>(e.cublas), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
            trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
            static_cast<int>(k), &alpha, b, static_cast<int>(ldb), stride_b, a,
            static_cast<int>(lda), stride_a, &beta, c, static_cast<int>(ldc), stride_c,
            static_cast<int>(count)));
      });
}

void gemm_bias(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
               std::int64_t k, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
               float* c, std::int64_t ldc, const float* bias) {
  CUTRAIN_CHECK(ldc == n, "gemm_bias: the output's rows must be contiguous (ldc ", ldc, " != n ", n,
                ")");
  if (m == 0 || n == 0) return;
#if CUTRAIN_WITH_CUDA
  if (e.device.is_cuda() && e.lt != nullptr &&
      static_cast<detail::LtMatmul*>(e.lt)->gemm_bias(trans_a, trans_b, m, n, k, a, lda, b, ldb, c,
                                                      ldc, bias, e.stream))
    return;
#endif
  gemm(e, trans_a, trans_b, m, n, k, 1.0F, a, lda, b, ldb, 0.0F, c, ldc);
  add_bias(e, c, bias, m, n);
}

bool gemm_bias_relu(const Exec& e, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                    std::int64_t k, const float* a, std::int64_t lda, const float* b,
                    std::int64_t ldb, float* pre, float* out, std::int64_t ldc, const float* bias) {
  CUTRAIN_CHECK(ldc == n, "gemm_bias_relu: the output's rows must be contiguous (ldc ", ldc,
                " != n ", n, ")");
  if (m == 0 || n == 0) return true;
#if CUTRAIN_WITH_CUDA
  if (e.device.is_cuda() && e.lt != nullptr &&
      static_cast<detail::LtMatmul*>(e.lt)->gemm_bias(trans_a, trans_b, m, n, k, a, lda, b, ldb,
                                                      out, ldc, bias, e.stream, /*relu=*/true))
    return false;
#endif
  gemm_bias(e, trans_a, trans_b, m, n, k, a, lda, b, ldb, pre, ldc, bias);
  activation_forward(e, rules::Activation::kRelu, 0.0F, pre, out,
                     static_cast<std::size_t>(m) * static_cast<std::size_t>(n));
  return true;
}

namespace {

// Note [activation kind outside the loop]: the CPU loops call the rule with the kind as a
// compile-time constant, so its switch folds away and g++ vectorizes the loop body (with the
// kind read per element the ReLU loop ran scalar, ~10x below the copy bandwidth). The GPU
// kernel keeps the run-time kind: uniform across a warp, it costs nothing there.
template <class F>
void with_activation(rules::Activation a, F&& f) {
  using A = rules::Activation;
  switch (a) {
    case A::kRelu:
      return f(std::integral_constant<A, A::kRelu>{});
    case A::kLeakyRelu:
      return f(std::integral_constant<A, A::kLeakyRelu>{});
    case A::kTanh:
      return f(std::integral_constant<A, A::kTanh>{});
    case A::kSigmoid:
      return f(std::integral_constant<A, A::kSigmoid>{});
    case A::kGelu:
      return f(std::integral_constant<A, A::kGelu>{});
    case A::kSilu:
      return f(std::integral_constant<A, A::kSilu>{});
    case A::kRelu6:
      return f(std::integral_constant<A, A::kRelu6>{});
    case A::kHardswish:
      return f(std::integral_constant<A, A::kHardswish>{});
    case A::kElu:
      return f(std::integral_constant<A, A::kElu>{});
  }
  CUTRAIN_FAIL("unknown activation ", static_cast<int>(a));
}

}  // namespace

void activation_forward(const Exec& e, rules::Activation a, float slope, const float* x, float* y,
                        std::size_t n) {
  CUTRAIN_NN_DISPATCH(with_activation(a,
                                      [&](auto kind) {
                                        cpu::parallel_for(n, [=](std::size_t i) {
                                          y[i] = rules::activation_forward(kind, x[i], slope);
                                        });
                                      }),
                      kernels::launch_activation_forward(a, slope, x, y, n, e.stream))
}

void activation_backward(const Exec& e, rules::Activation a, float slope, const float* x,
                         const float* y, const float* dy, float* dx, std::size_t n) {
  CUTRAIN_NN_DISPATCH(with_activation(a,
                                      [&](auto kind) {
                                        cpu::parallel_for(n, [=](std::size_t i) {
                                          dx[i] = rules::activation_backward(kind, x[i], y[i],
                                                                             dy[i], slope);
                                        });
                                      }),
                      kernels::launch_activation_backward(a, slope, x, y, dy, dx, n, e.stream))
}

// Row by row: the inner loop over columns vectorizes (an index modulo per element did not).
void add_bias(const Exec& e, float* y, const float* bias, std::int64_t rows, std::int64_t cols) {
  CUTRAIN_NN_DISPATCH(
      cpu::parallel_rows(static_cast<std::size_t>(rows), static_cast<std::size_t>(cols),
                         [=](std::size_t r) {
                           float* row = y + r * static_cast<std::size_t>(cols);
                           for (std::int64_t c = 0; c < cols; ++c) row[c] += bias[c];
                         }),
      kernels::launch_add_bias(y, bias, rows, cols, e.stream))
}

// The CPU loop walks rows (contiguous) for a block of columns at a time, each column keeping its
// own chunk sums: per column the same additions in the same order as rules::column_sum (Note
// [column sums in chunks]), but vectorized across columns instead of striding down each one.
void column_sum(const Exec& e, const float* x, std::int64_t rows, std::int64_t cols, float* out) {
  constexpr std::int64_t kBlockCols = 64;
  const auto blocks = static_cast<std::size_t>((cols + kBlockCols - 1) / kBlockCols);
  CUTRAIN_NN_DISPATCH(
      cpu::parallel_rows(blocks, static_cast<std::size_t>(rows * kBlockCols),
                         [=](std::size_t b) {
                           const std::int64_t c0 = static_cast<std::int64_t>(b) * kBlockCols;
                           const std::int64_t width = std::min(kBlockCols, cols - c0);
                           double chunks[kBlockCols][rules::kColumnChunks];
                           for (int k = 0; k < rules::kColumnChunks; ++k) {
                             double acc[kBlockCols] = {};
                             for (std::int64_t r = rules::column_chunk_begin(k, rows);
                                  r < rules::column_chunk_begin(k + 1, rows); ++r) {
                               const float* row = x + r * cols + c0;
                               for (std::int64_t c = 0; c < width; ++c) acc[c] += row[c];
                             }
                             for (std::int64_t c = 0; c < width; ++c) chunks[c][k] = acc[c];
                           }
                           for (std::int64_t c = 0; c < width; ++c)
                             out[c0 + c] = rules::combine_column_chunks(chunks[c]);
                         }),
      kernels::launch_column_sum(x, rows, cols, out, e.stream))
}

void dropout_forward(const Exec& e, std::uint64_t seed, const std::uint64_t* count,
                     std::uint64_t stride, const rules::DropoutRows& rows, float* mask,
                     const float* x, float* y, std::size_t n, float p, rules::Store store) {
#if CUTRAIN_WITH_CURAND
  if (n == 0) return;
  // The CPU draws first (philox_uniform_host, the same rule and numbers) and applies second: no
  // faster or slower here than one fused loop (the Philox rounds set the pace), and it keeps one
  // copy of the block bookkeeping on the host. One segment is drawn in parallel inside
  // philox_uniform_host; a replica's rows (Note [replica rows]) are drawn a row per thread.
  const auto draw = [=](std::size_t r) {
    detail::philox_uniform_host(seed, *count * stride + rows.first + r * rows.pitch,
                                mask + r * rows.length, rows.length);
  };
  CUTRAIN_NN_DISPATCH(
      if (rows.rows == 1) draw(0); else cpu::parallel_rows(rows.rows, draw);
      rules::with_store(store,
                        [=](auto s) {
                          cpu::parallel_for(n, [=](std::size_t i) {
                            y[i] = rules::stored(s, rules::dropout_forward(mask[i], x[i], p));
                          });
                        }),
      kernels::launch_dropout_forward(seed, count, stride, rows, mask, x, y, n, p, store, e.stream))
#else
  (void)e, (void)seed, (void)count, (void)stride, (void)rows, (void)mask, (void)x, (void)y, (void)n,
      (void)p, (void)store;
  CUTRAIN_FAIL(
      "Dropout in training needs cuRAND's headers; cutrain was built without the CUDA "
      "toolkit");
#endif
}

void count_forward(const Exec& e, std::uint64_t* count) {
  CUTRAIN_NN_DISPATCH(++*count, kernels::launch_count_forward(count, e.stream))
}

void round_half(const Exec& e, rules::Half kind, const float* x, float* y, std::size_t n) {
  CUTRAIN_NN_DISPATCH(
      cpu::parallel_for(n, [=](std::size_t i) { y[i] = rules::round_half(kind, x[i]); }),
      kernels::launch_round_half(kind, x, y, n, e.stream))
}

void widen_half(const Exec& e, rules::Half kind, const std::uint16_t* h, float* y, std::size_t n) {
  // A loop per format: from_half with a run-time kind would keep it scalar.
  CUTRAIN_NN_DISPATCH(
      kind == rules::Half::kBf16
          ? cpu::parallel_for(n, [=](std::size_t i) { y[i] = rules::from_bf16(h[i]); })
          : cpu::parallel_for(n, [=](std::size_t i) { y[i] = rules::from_fp16(h[i]); }),
      kernels::launch_widen_half(kind, h, y, n, e.stream))
}

void multiply(const Exec& e, const float* a, const float* b, float* out, std::size_t n,
              rules::Store store) {
  CUTRAIN_NN_DISPATCH(rules::with_store(store,
                                        [=](auto s) {
                                          cpu::parallel_for(n, [=](std::size_t i) {
                                            out[i] = rules::stored(s, a[i] * b[i]);
                                          });
                                        }),
                      kernels::launch_multiply(a, b, out, n, store, e.stream))
}

void add(const Exec& e, const float* a, const float* b, float* out, std::size_t n) {
  CUTRAIN_NN_DISPATCH(cpu::parallel_for(n, [=](std::size_t i) { out[i] = a[i] + b[i]; }),
                      kernels::launch_add(a, b, out, n, e.stream))
}

void mean_of_two(const Exec& e, const float* a, const float* b, float* out, std::size_t n) {
  CUTRAIN_NN_DISPATCH(
      cpu::parallel_for(n, [=](std::size_t i) { out[i] = rules::mean_of_two(a[i], b[i]); }),
      kernels::launch_mean_of_two(a, b, out, n, e.stream))
}

void copy(const Exec& e, const float* src, float* dst, std::size_t n) {
  if (src == dst || n == 0) return;
  copy_bytes(dst, e.device, src, e.device, n * sizeof(float),
             e.device.is_cpu() ? nullptr : e.stream);
}

void softmax_cross_entropy(const Exec& e, const float* logits, const std::int32_t* labels,
                           std::int64_t rows, int classes, float eps, ClassWeights cw,
                           float* row_loss, float* dlogits, const float* grad_seed) {
  const float inv_batch = 1.0F / static_cast<float>(rows);
  // A CPU seed is host memory; a GPU kernel reads it itself.
  const float seed = e.device.is_cpu() && grad_seed != nullptr ? *grad_seed : 1.0F;
  if (cw.weights == nullptr) {
    CUTRAIN_NN_DISPATCH(
        cpu::parallel_for(static_cast<std::size_t>(rows),
                          [=](std::size_t r) {
                            row_loss[r] = rules::softmax_cross_entropy_row(
                                logits + r * classes, classes, labels[r], eps, inv_batch, seed,
                                dlogits ? dlogits + r * classes : nullptr);
                          }),
        kernels::launch_softmax_cross_entropy(logits, labels, rows, classes, eps, nullptr, nullptr,
                                              row_loss, dlogits, grad_seed, e.stream))
    return;
  }
  if (e.device.is_cpu()) {
    double d = 0.0;  // in row order: the CPU's D is the same bits on every run
    for (std::int64_t r = 0; r < rows; ++r)
      d += rules::target_weight(cw.weights, classes, labels[r]);
    *cw.total = static_cast<float>(d);
    const float inv_total = 1.0F / *cw.total;
    const float* w = cw.weights;
    cpu::parallel_for(static_cast<std::size_t>(rows), [=](std::size_t r) {
      row_loss[r] = rules::weighted_softmax_cross_entropy_row(
          logits + r * classes, classes, labels[r], eps, w, inv_total, seed,
          dlogits ? dlogits + r * classes : nullptr);
    });
  } else {
    CUTRAIN_ON_CUDA(
        kernels::launch_class_weight_total(labels, rows, classes, cw.weights, cw.total, e.stream));
    CUTRAIN_ON_CUDA(kernels::launch_softmax_cross_entropy(logits, labels, rows, classes, eps,
                                                          cw.weights, cw.total, row_loss, dlogits,
                                                          grad_seed, e.stream));
  }
}

void softmax_cross_entropy_mean(const Exec& e, const float* logits, const std::int32_t* labels,
                                std::int64_t rows, int classes, float eps, ClassWeights cw,
                                float* row_loss, float* dlogits, float* out, float* also,
                                const float* grad_seed) {
#if CUTRAIN_WITH_CUDA
  if (e.device.is_cuda() && rows <= kernels::kLossMeanRows) {
    kernels::launch_softmax_cross_entropy_mean(logits, labels, rows, classes, eps, cw.weights,
                                               cw.total, dlogits, out, also, grad_seed, e.stream);
    return;
  }
#endif
  softmax_cross_entropy(e, logits, labels, rows, classes, eps, cw, row_loss, dlogits, grad_seed);
  // Weighted row losses are already over D: their sum is the mean.
  mean(e, row_loss, static_cast<std::size_t>(rows), cw.weights ? 1.0 : static_cast<double>(rows),
       out, also);
}

void mse(const Exec& e, const float* y, const float* t, std::size_t n, float* sq, float* grad,
         const float* grad_seed) {
  const float inv_n = 1.0F / static_cast<float>(n) *
                      (e.device.is_cpu() && grad_seed != nullptr ? *grad_seed : 1.0F);
  CUTRAIN_NN_DISPATCH(cpu::parallel_for(n,
                                        [=](std::size_t i) {
                                          sq[i] = rules::mse_element(y[i], t[i], inv_n,
                                                                     grad ? grad + i : nullptr);
                                        }),
                      kernels::launch_mse(y, t, n, sq, grad, grad_seed, e.stream))
}

void eval_accumulate(const Exec& e, const float* logits, const std::int32_t* labels,
                     std::int64_t rows, int classes, const float* mean_loss,
                     const float* batch_weight, rules::EvalSums* sums) {
  if (e.device.is_cpu()) {
    unsigned long long correct = 0;
    for (std::int64_t r = 0; labels != nullptr && r < rows; ++r)
      correct += rules::row_correct(logits + r * classes, classes, labels[r]) ? 1ULL : 0ULL;
    rules::add_eval_batch(
        *sums, *mean_loss,
        batch_weight ? static_cast<double>(*batch_weight) : static_cast<double>(rows), correct);
  } else {
    CUTRAIN_ON_CUDA(kernels::launch_eval_accumulate(logits, labels, rows, classes, mean_loss,
                                                    batch_weight, sums, e.stream));
  }
}

void mean(const Exec& e, const float* x, std::size_t n, double divisor, float* out, float* also) {
  if (e.device.is_cpu()) {
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) s += x[i];
    *out = static_cast<float>(s / divisor);
    if (also != nullptr) *also = *out;
  } else {
    CUTRAIN_ON_CUDA(kernels::launch_mean(x, n, divisor, out, also, e.stream));
  }
}

}  // namespace cutrain::nn::backend
