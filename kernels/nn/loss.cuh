#pragma once
// Loss rules shared by the CUDA kernels and the CPU loops.
//
// Softmax cross-entropy with label smoothing eps over C classes, for one row x with target t
// (torch.nn.CrossEntropyLoss(label_smoothing=eps)): with lse = log sum_c exp(x_c), computed as
// m + log sum exp(x_c - m) with m = max x (stable for any logit size),
//   q_c   = (1 - eps) [c = t] + eps / C
//   loss  = sum_c q_c (lse - x_c) = lse - (1 - eps) x_t - (eps / C) sum_c x_c
//   dloss/dx_c = softmax_c - q_c          (then divided by the batch size: mean reduction)
// With class weights w (CrossEntropyLoss(weight=w, label_smoothing=eps), mean reduction) every
// row is weighted by its target's weight, the smoothing term by each class's, and the batch is
// divided by D = sum_i w_{t_i} instead of its size (PyTorch's formula, checked against it):
//   loss_i = (1 - eps) w_t (lse - x_t) + (eps / C) sum_c w_c (lse - x_c)
//   dloss_i/dx_c = p_c ((1 - eps) w_t + (eps / C) W) - (1 - eps) w_t [c = t] - (eps / C) w_c,
//   W = sum_c w_c, p = softmax(x); loss = sum_i loss_i / D and each gradient row / D.
// A batch whose targets all weigh 0 has D = 0 and a NaN loss, as in PyTorch (the step is then
// skipped as for any non-finite gradient).
// MSE (torch.nn.MSELoss, mean over all N elements): loss = sum (y - t)^2 / N,
//   dloss/dy = 2 (y - t) / N.
// Every gradient is multiplied by a seed S, the loss scale (Note [dynamic loss scale],
// cutrain/optim/step_control.hpp; 1 without one), folded into the divisor's inverse: S being a
// power of two, inv x S is exact and so is the scaled gradient - S times the unscaled one's bits.

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
// the batch size) x seed when dx is non-null. A target outside [0, C) yields NaN (the caller
// flags it).
CUTRAIN_HD float softmax_cross_entropy_row(const float* x, int classes, int target, float eps,
                                           float inv_batch, float seed, float* dx) {
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
      dx[c] = cross_entropy_grad(x[c], m, log_s, c == target, classes, eps, inv_batch * seed);
  return cross_entropy_row_loss(m, log_s, x[target],
                                static_cast<float>(sum_x / static_cast<double>(classes)), eps);
}

// A row's share of D: its target's weight, NaN for a target outside [0, C) (never read past w).
CUTRAIN_HD float target_weight(const float* w, int classes, int target) {
  return target < 0 || target >= classes ? NAN : w[target];
}

// One row of weighted softmax cross-entropy (the formula above): returns loss_i / D, writes
// dloss_i/dx / D x seed when dx is non-null; inv_total = 1 / D. A target outside [0, C) yields
// NaN.
CUTRAIN_HD float weighted_softmax_cross_entropy_row(const float* x, int classes, int target,
                                                    float eps, const float* w, float inv_total,
                                                    float seed, float* dx) {
  if (target < 0 || target >= classes) return NAN;
  float m = x[0];
  for (int c = 1; c < classes; ++c) m = fmaxf(m, x[c]);
  double s = 0.0, sum_w = 0.0, sum_w_gap = 0.0;  // gap: m - x_c, so lse - x_c = gap + log_s
  for (int c = 0; c < classes; ++c) {
    s += expf(x[c] - m);
    sum_w += w[c];
    sum_w_gap += static_cast<double>(w[c]) * static_cast<double>(m - x[c]);
  }
  const float log_s = logf(static_cast<float>(s));
  const float hit = (1.0F - eps) * w[target];
  const float smooth = eps / static_cast<float>(classes);
  if (dx != nullptr) {
    const float scale = hit + smooth * static_cast<float>(sum_w);
    const float factor = inv_total * seed;
    for (int c = 0; c < classes; ++c)
      dx[c] =
          (expf((x[c] - m) - log_s) * scale - (c == target ? hit : 0.0F) - smooth * w[c]) * factor;
  }
  const float loss = hit * ((m - x[target]) + log_s) +
                     smooth * static_cast<float>(sum_w_gap + sum_w * static_cast<double>(log_s));
  return loss * inv_total;
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

// With class weights a batch's mean is over its weight D (above), so it counts D times and the
// whole set's loss is loss / weight - the value PyTorch gives for the set as one batch; without,
// weight is the rows' count.
struct EvalSums {
  double loss = 0.0;    // sum over batches of mean loss x batch weight
  double weight = 0.0;  // sum over batches of their weight (rows, or D with class weights)
  unsigned long long correct = 0;
};

CUTRAIN_HD void add_eval_batch(EvalSums& sums, float mean_loss, double weight,
                               unsigned long long correct) {
  // A batch of zero total weight (only zero-weight classes) has mean 0/0 = NaN but counts for
  // nothing in the set's weighted mean: skipped, not NaN x 0.
  if (weight > 0.0) sums.loss += static_cast<double>(mean_loss) * weight;
  sums.weight += weight;
  sums.correct += correct;
}

// One element of MSE: returns (y - t)^2, writes 2 (y - t) / N x seed when grad is non-null
// (inv_n_seed = seed / N).
CUTRAIN_HD float mse_element(float y, float t, float inv_n_seed, float* grad) {
  const float d = y - t;
  if (grad != nullptr) *grad = 2.0F * d * inv_n_seed;
  return d * d;
}

}  // namespace cutrain::rules
