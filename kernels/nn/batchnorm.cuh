#pragma once
// BatchNorm's formulas (torch.nn.BatchNorm1d / BatchNorm2d semantics) for one feature over its
// B values (B = the batch, times H W for an image's channel). Where the values lie and the order
// of the sums (in double) are kernels/nn/channel.cuh's, for BatchNorm1d's columns [B, F] (a
// plane of 1) and BatchNorm2d's channels [N, C, H W] alike (Note [channel sums in lanes]).
//
// training:  mean = sum x / B,  var = sum (x - mean)^2 / B  (biased, used to normalize)
//            xhat = (x - mean) / sqrt(var + eps),  y = gamma xhat + beta
//            running_mean <- (1 - m) running_mean + m mean
//            running_var  <- (1 - m) running_var  + m var B / (B - 1)   (unbiased, as PyTorch)
// eval:      y = gamma (x - running_mean) / sqrt(running_var + eps) + beta
// backward:  dgamma = sum dy xhat,  dbeta = sum dy,
//            dx = gamma invstd / B (B dy - dbeta - xhat dgamma)
// eval backward (the running statistics are constants of the pass - PyTorch's backward of an
//            eval-mode BatchNorm): xhat and invstd from running_mean and running_var,
//            dgamma and dbeta as above, dx = gamma invstd dy

#include <cmath>
#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

CUTRAIN_HD float batchnorm_invstd(double var, float eps) {
  return static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
}
CUTRAIN_HD float batchnorm_apply(float x, float mean, float invstd, float gamma, float beta) {
  return fmaf((x - mean) * invstd, gamma, beta);
}
// The running statistics' update (count > 1) and the batch statistics backward reads.
CUTRAIN_HD void batchnorm_finish(double mean, double var, std::int64_t count, float eps,
                                 float momentum, float* running_mean, float* running_var,
                                 float* save_mean, float* save_invstd) {
  const double unbiased = var * static_cast<double>(count) / static_cast<double>(count - 1);
  *running_mean = static_cast<float>((1.0 - momentum) * *running_mean + momentum * mean);
  *running_var = static_cast<float>((1.0 - momentum) * *running_var + momentum * unbiased);
  *save_mean = static_cast<float>(mean);
  *save_invstd = batchnorm_invstd(var, eps);
}
CUTRAIN_HD float batchnorm_xhat(float x, float mean, float invstd) {
  return (x - mean) * invstd;
}
// The backward's per-feature factor k = gamma invstd / B (gamma 1 without affine parameters).
CUTRAIN_HD float batchnorm_grad_scale(const float* gamma, std::int64_t c, float invstd, float b) {
  return (gamma != nullptr ? gamma[c] : 1.0F) * invstd / b;
}
// dx for one element: k = batchnorm_grad_scale, b = B.
CUTRAIN_HD float batchnorm_input_grad(float x, float dy, float mean, float invstd, float k, float b,
                                      float sum_dy, float sum_dy_xhat) {
  return k * (b * dy - sum_dy - batchnorm_xhat(x, mean, invstd) * sum_dy_xhat);
}

// dx for one element in eval mode (the running statistics' invstd).
CUTRAIN_HD float batchnorm_frozen_input_grad(const float* gamma, std::int64_t c, float invstd,
                                             float dy) {
  return (gamma != nullptr ? gamma[c] : 1.0F) * invstd * dy;
}

}  // namespace cutrain::rules
