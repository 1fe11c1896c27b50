// Loss kernels: softmax cross-entropy (with label smoothing and class weights) and mean squared
// error, their means, and evaluation's running sums - thin launches around kernels/nn/loss.cuh.
//
// Launch shapes: cross-entropy runs one thread per row (the class count of the models cutrain
// trains is small; a block-per-row variant is the step to take for large vocabularies); every
// mean is one block, so its double sum has one order (Note [loss and mean in one block]).
#include <cub/block/block_reduce.cuh>

#include "kernels/common/grid_stride.cuh"
#include "kernels/nn/loss.cuh"
#include "kernels/nn/nn.hpp"

namespace cutrain::kernels {
namespace {

// One row's loss (and gradient row) for both kernels below: weights null - the unweighted rule,
// over the batch size; else the weighted rule over D (kernels/nn/loss.cuh).
__device__ float cross_entropy_row(const float* logits, const std::int32_t* labels, std::int64_t r,
                                   int classes, float eps, float inv_batch, const float* weights,
                                   float inv_total, float seed, float* dlogits) {
  const float* x = logits + r * classes;
  float* dx = dlogits ? dlogits + r * classes : nullptr;
  return weights == nullptr
             ? rules::softmax_cross_entropy_row(x, classes, labels[r], eps, inv_batch, seed, dx)
             : rules::weighted_softmax_cross_entropy_row(x, classes, labels[r], eps, weights,
                                                         inv_total, seed, dx);
}

__global__ void softmax_cross_entropy_kernel(
    const float* __restrict__ logits, const std::int32_t* __restrict__ labels, std::int64_t rows,
    int classes, float eps, const float* __restrict__ weights, const float* __restrict__ total,
    float* __restrict__ row_loss, float* dlogits, const float* grad_seed) {
  const float seed = grad_seed != nullptr ? *grad_seed : 1.0F;
  for (auto r = static_cast<std::int64_t>(global_id()); r < rows;
       r += static_cast<std::int64_t>(grid_stride())) {
    row_loss[r] =
        cross_entropy_row(logits, labels, r, classes, eps, 1.0F / static_cast<float>(rows), weights,
                          weights ? 1.0F / *total : 0.0F, seed, dlogits);
  }
}

// D = sum of the rows' target weights: thread t adds rows t, t + kBlock, ... in double, then one
// block reduction - the order softmax_cross_entropy_mean_kernel repeats, so both give one D.
__device__ float block_class_weight_total(const std::int32_t* labels, std::int64_t rows,
                                          int classes, const float* weights) {
  using Reduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ float total;
  double acc = 0.0;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    acc += rules::target_weight(weights, classes, labels[r]);
  const double sum = Reduce(temp).Sum(acc);
  if (threadIdx.x == 0) total = static_cast<float>(sum);
  __syncthreads();  // every thread reads the total; the caller may reuse its own temp storage
  return total;
}

__global__ void __launch_bounds__(kBlock)
    class_weight_total_kernel(const std::int32_t* __restrict__ labels, std::int64_t rows,
                              int classes, const float* __restrict__ weights, float* total) {
  const float d = block_class_weight_total(labels, rows, classes, weights);
  if (threadIdx.x == 0) *total = d;
}

__global__ void mse_kernel(const float* __restrict__ y, const float* __restrict__ t, std::size_t n,
                           float* __restrict__ sq, float* grad, const float* grad_seed) {
  const float inv_n = 1.0F / static_cast<float>(n) * (grad_seed != nullptr ? *grad_seed : 1.0F);
  for (std::size_t i = global_id(); i < n; i += grid_stride())
    sq[i] = rules::mse_element(y[i], t[i], inv_n, grad ? grad + i : nullptr);
}

__global__ void __launch_bounds__(kBlock) mean_kernel(const float* __restrict__ x, std::size_t n,
                                                      double divisor, float* out, float* also) {
  using Reduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  double acc = 0.0;
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  const double total = Reduce(temp).Sum(acc);
  if (threadIdx.x == 0) {
    const auto m = static_cast<float>(total / divisor);
    *out = m;
    if (also != nullptr) *also = m;
  }
}

// Note [loss and mean in one block] (kernels/nn/nn.hpp): softmax_cross_entropy_kernel's rows
// and mean_kernel's sum in one block, thread t taking rows t, t + kBlock, ... for both, so each
// row loss is the same float and the double sum adds them in the same order: the same bits as
// the two launches.
__global__ void __launch_bounds__(kBlock)
    softmax_cross_entropy_mean_kernel(const float* __restrict__ logits,
                                      const std::int32_t* __restrict__ labels, std::int64_t rows,
                                      int classes, float eps, const float* __restrict__ weights,
                                      float* total_weight, float* dlogits, float* out, float* also,
                                      const float* grad_seed) {
  using Reduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  const float inv_batch = 1.0F / static_cast<float>(rows);
  const float seed = grad_seed != nullptr ? *grad_seed : 1.0F;
  float inv_total = 0.0F;
  if (weights != nullptr) {
    const float d = block_class_weight_total(labels, rows, classes, weights);
    if (threadIdx.x == 0) *total_weight = d;
    inv_total = 1.0F / d;
  }
  double acc = 0.0;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    acc += cross_entropy_row(logits, labels, r, classes, eps, inv_batch, weights, inv_total, seed,
                             dlogits);
  const double total = Reduce(temp).Sum(acc);
  if (threadIdx.x == 0) {
    // Weighted row losses are already over D: their sum is the mean.
    const auto m = static_cast<float>(total / (weights ? 1.0 : static_cast<double>(rows)));
    *out = m;
    if (also != nullptr) *also = m;
  }
}

// Note [evaluation on the device]: one block, so the batches add up in launch order.
__global__ void __launch_bounds__(kBlock)
    eval_accumulate_kernel(const float* __restrict__ logits,
                           const std::int32_t* __restrict__ labels, std::int64_t rows, int classes,
                           const float* __restrict__ mean_loss,
                           const float* __restrict__ batch_weight,
                           rules::EvalSums* __restrict__ sums) {
  using Reduce = cub::BlockReduce<unsigned long long, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  unsigned long long correct = 0;
  for (std::int64_t r = threadIdx.x; labels != nullptr && r < rows; r += blockDim.x)
    correct += rules::row_correct(logits + r * classes, classes, labels[r]) ? 1ULL : 0ULL;
  const unsigned long long total = Reduce(temp).Sum(correct);
  if (threadIdx.x == 0)
    rules::add_eval_batch(
        *sums, *mean_loss,
        batch_weight ? static_cast<double>(*batch_weight) : static_cast<double>(rows), total);
}

}  // namespace

void launch_softmax_cross_entropy(const float* logits, const std::int32_t* labels,
                                  std::int64_t rows, int classes, float eps,
                                  const float* class_weights, const float* total, float* row_loss,
                                  float* dlogits, const float* grad_seed, NativeStream stream) {
  CUTRAIN_LAUNCH(softmax_cross_entropy_kernel, static_cast<std::size_t>(rows), logits, labels, rows,
                 classes, eps, class_weights, total, row_loss, dlogits, grad_seed);
}
void launch_class_weight_total(const std::int32_t* labels, std::int64_t rows, int classes,
                               const float* class_weights, float* total, NativeStream stream) {
  class_weight_total_kernel<<<1, kBlock, 0, stream>>>(labels, rows, classes, class_weights, total);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_mse(const float* y, const float* t, std::size_t n, float* sq, float* grad,
                const float* grad_seed, NativeStream stream) {
  CUTRAIN_LAUNCH(mse_kernel, n, y, t, n, sq, grad, grad_seed);
}
void launch_mean(const float* x, std::size_t n, double divisor, float* out, float* also,
                 NativeStream stream) {
  mean_kernel<<<1, kBlock, 0, stream>>>(x, n, divisor, out, also);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_softmax_cross_entropy_mean(const float* logits, const std::int32_t* labels,
                                       std::int64_t rows, int classes, float eps,
                                       const float* class_weights, float* total, float* dlogits,
                                       float* out, float* also, const float* grad_seed,
                                       NativeStream stream) {
  softmax_cross_entropy_mean_kernel<<<1, kBlock, 0, stream>>>(
      logits, labels, rows, classes, eps, class_weights, total, dlogits, out, also, grad_seed);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_eval_accumulate(const float* logits, const std::int32_t* labels, std::int64_t rows,
                            int classes, const float* mean_loss, const float* batch_weight,
                            rules::EvalSums* sums, NativeStream stream) {
  eval_accumulate_kernel<<<1, kBlock, 0, stream>>>(logits, labels, rows, classes, mean_loss,
                                                   batch_weight, sums);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
