#pragma once
// Loss rules shared by the CUDA kernels and the CPU loops.
//
// Softmax cross-entropy with label smoothing eps over C classes, for one row x with target t
// (torch.nn.CrossEntropyLoss(label_smoothing=eps)): with lse = log sum_c exp(x_c), computed as
// m + log sum exp(x_c - m) with m = max x (stable for any logit size),
//   q_c   = (1 - eps) [c = t] + eps / C
//   loss  = sum_c q_c (lse - x_c) = lse - (1 - eps) x_t - (eps / C) sum_c x_c
//   dloss/dx_c = softmax_c - q_c          (then divided by the batch size: mean reduction)
// MSE (torch.nn.MSELoss, mean over all N elements): loss = sum (y - t)^2 / N,
//   dloss/dy = 2 (y - t) / N.

#include <cmath>
#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

// Both take the row maximum m and log_s = log sum exp(x_c - m) rather than lse = m + log_s:
// with logits near 1000, lse rounded to float would lose 4 digits of every probability.
CUTRAIN_HD float cross_entropy_row_loss(float m, float log_s, float x_target, float mean_x,
                                        float eps) {
  // lse - (1 - eps) x_t - eps mean(x) = (1 - eps)(m - x_t) + eps (m - mean(x)) + log_s
  return (1.0F - eps) * (m - x_target) + eps * (m - mean_x) + log_s;
}

CUTRAIN_HD float cross_entropy_grad(float x, float m, float log_s, bool is_target, int classes,
                                    float eps, float inv_batch) {
  const float q = (is_target ? 1.0F - eps : 0.0F) + eps / static_cast<float>(classes);
  return (expf((x - m) - log_s) - q) * inv_batch;
}

}  // namespace cutrain::rules

namespace cutrain::rules {

// One row of softmax cross-entropy: returns the row's loss, writes dloss/dx (already divided by
// the batch size) when dx is non-null. A target outside [0, C) yields NaN (the caller flags it).
CUTRAIN_HD float softmax_cross_entropy_row(const float* x, int classes, int target, float eps,
                                           float inv_batch, float* dx) {
  if (target < 0 || target >= classes) return NAN;
  float m = x[0];
  for (int c = 1; c < classes; ++c) m = fmaxf(m, x[c]);
  double s = 0.0, sum_x = 0.0;
  for (int c = 0; c < classes; ++c) {
    s += expf(x[c] - m);
    sum_x += x[c];
  }
  const float log_s = logf(static_cast<float>(s));
  if (dx != nullptr)
    for (int c = 0; c < classes; ++c)
      dx[c] = cross_entropy_grad(x[c], m, log_s, c == target, classes, eps, inv_batch);
  return cross_entropy_row_loss(m, log_s, x[target],
                                static_cast<float>(sum_x / static_cast<double>(classes)), eps);
}

// Note [evaluation on the device]: evaluation keeps its running sums where the logits are and
// reads them once at the end. Per batch: the mean loss times the batch's rows (in double, as the
// host used to add it), and the rows whose first largest logit is the label (ties go to the
// lowest class, as std::max_element; a comparison with NaN is false, so a NaN logit is never
// chosen over class 0's, and a NaN in class 0 is kept).
// row_argmax is the predicted class everywhere (train::predicted_class, confusion matrices), so a
// confusion matrix's trace is the accuracy evaluation counts.
CUTRAIN_HD int row_argmax(const float* x, int classes) {
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (x[best] < x[c]) best = c;
  return best;
}
CUTRAIN_HD bool row_correct(const float* x, int classes, int target) {
  return row_argmax(x, classes) == target;
}

struct EvalSums {
  double loss = 0.0;  // sum over batches of mean loss x rows
  unsigned long long correct = 0;
};

CUTRAIN_HD void add_eval_batch(EvalSums& sums, float mean_loss, std::int64_t rows,
                               unsigned long long correct) {
  sums.loss += static_cast<double>(mean_loss) * static_cast<double>(rows);
  sums.correct += correct;
}

// One element of MSE: returns (y - t)^2, writes 2 (y - t) / N when grad is non-null.
CUTRAIN_HD float mse_element(float y, float t, float inv_n, float* grad) {
  const float d = y - t;
  if (grad != nullptr) *grad = 2.0F * d * inv_n;
  return d * d;
}

}  // namespace cutrain::rules
