#pragma once
// Host-callable launchers of the layer kernels (CUTRAIN_WITH_CUDA builds). Matrices are
// row-major, pointers on the current device, work ordered on `stream`.

#include <cstddef>
#include <cstdint>

#include "cutrain/stream.hpp"
#include "kernels/common/half.cuh"
#include "kernels/nn/activation.cuh"
#include "kernels/nn/loss.cuh"

namespace cutrain::kernels {

void launch_activation_forward(rules::Activation a, float slope, const float* x, float* y,
                               std::size_t n, NativeStream stream);
void launch_activation_backward(rules::Activation a, float slope, const float* x, const float* y,
                                const float* dy, float* dx, std::size_t n, NativeStream stream);
// y[r, c] += bias[c]
void launch_add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                     NativeStream stream);
// out[c] = sum_r x[r, c]
void launch_column_sum(const float* x, std::int64_t rows, std::int64_t cols, float* out,
                       NativeStream stream);
// Note [dropout from the counter]: mask[i] from the Philox stream of `seed` at the place `rows`
// gives element i (number position + i in one process), position = *count x stride with *count
// read on the device (Note [forward count in device memory]), y = x * mask, in one pass (x and
// y may be the same array).
void launch_dropout_forward(std::uint64_t seed, const std::uint64_t* count, std::uint64_t stride,
                            const rules::DropoutRows& rows, float* mask, const float* x, float* y,
                            std::size_t n, float p, rules::Store store, NativeStream stream);
// ++*count, one thread (Note [forward count in device memory]).
void launch_count_forward(std::uint64_t* count, NativeStream stream);
// y[i] = rules::round_half(kind, x[i]) (x and y may be the same array).
void launch_round_half(rules::Half kind, const float* x, float* y, std::size_t n,
                       NativeStream stream);
// y[i] = rules::from_half(kind, h[i]): 16-bit values as floats (Note [16-bit compute copy]).
void launch_widen_half(rules::Half kind, const std::uint16_t* h, float* y, std::size_t n,
                       NativeStream stream);
// out[i] = a[i] * b[i] (stored as `store` says: Note [16-bit stores]), out[i] = a[i] + b[i] (out
// may be a or b).
void launch_multiply(const float* a, const float* b, float* out, std::size_t n, rules::Store store,
                     NativeStream stream);
void launch_add(const float* a, const float* b, float* out, std::size_t n, NativeStream stream);
// out[i] = rules::mean_of_two(a[i], b[i]) (Note [test-time flips]); out may be a or b.
void launch_mean_of_two(const float* a, const float* b, float* out, std::size_t n,
                        NativeStream stream);
// Per-row losses into row_loss; dlogits when non-null. class_weights null: unweighted (row losses
// to be divided by rows); else [classes] weights and *total = D from launch_class_weight_total
// (row losses already divided by D). An invalid label makes its row NaN. grad_seed (nullable,
// device memory): dlogits are *grad_seed times the mean's gradient (the loss scale).
void launch_softmax_cross_entropy(const float* logits, const std::int32_t* labels,
                                  std::int64_t rows, int classes, float eps,
                                  const float* class_weights, const float* total, float* row_loss,
                                  float* dlogits, const float* grad_seed, NativeStream stream);
// *total = D = sum over rows of class_weights[label] (kernels/nn/loss.cuh), summed in double by
// one block in a fixed order - the order the one-block loss below sums it in.
void launch_class_weight_total(const std::int32_t* labels, std::int64_t rows, int classes,
                               const float* class_weights, float* total, NativeStream stream);
void launch_mse(const float* y, const float* t, std::size_t n, float* sq, float* grad,
                const float* grad_seed, NativeStream stream);
// *out = sum(x[0..n)) / divisor, deterministic (one block, fixed order), in double.
void launch_mean(const float* x, std::size_t n, double divisor, float* out, float* also,
                 NativeStream stream);
// Note [loss and mean in one block]: launch_softmax_cross_entropy then launch_mean (divisor:
// rows) in ONE one-block launch, the same additions in the same order - the same bits. For
// batches up to kLossMeanRows rows (a thread handles rows t, t + 256, ... as the mean kernel
// reads them).
inline constexpr std::int64_t kLossMeanRows = 4096;
// With class_weights, also launch_class_weight_total's pass first, in the same block (D into
// *total), and the mean's divisor is 1.
void launch_softmax_cross_entropy_mean(const float* logits, const std::int32_t* labels,
                                       std::int64_t rows, int classes, float eps,
                                       const float* class_weights, float* total, float* dlogits,
                                       float* out, float* also, const float* grad_seed,
                                       NativeStream stream);
// sums->loss += *mean_loss * weight; sums->weight += weight (batch_weight null: rows; else
// *batch_weight, the batch's D); sums->correct += rows whose argmax is the label
// (Note [evaluation on the device]). One block: a fixed order, deterministic.
void launch_eval_accumulate(const float* logits, const std::int32_t* labels, std::int64_t rows,
                            int classes, const float* mean_loss, const float* batch_weight,
                            rules::EvalSums* sums, NativeStream stream);

}  // namespace cutrain::kernels
