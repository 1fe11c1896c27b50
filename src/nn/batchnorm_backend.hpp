#pragma once
// BatchNorm's backend dispatch (src/nn/backend.hpp's twin for the per-channel statistics): the
// CPU loops over the shared rules (kernels/nn/batchnorm.cuh, channel.cuh) or the kernels
// (kernels/nn/conv.cu), for BatchNorm2d over x [n, channels, plane] and BatchNorm1d as a plane
// of 1 ([batch, features]).

#include <cstddef>
#include <cstdint>

#include "kernels/nn/batch_sync.hpp"
#include "src/nn/backend.hpp"

namespace cutrain::nn::backend {

// Note [synchronized batch statistics]: kernels/nn/batch_sync.hpp.
using kernels::BatchSync;

// With `relu`, y is the following ReLU's output; with `relu_y` (that output), dy is the gradient
// above the ReLU (Note [BatchNorm2d and ReLU in one pass], kernels/nn/channel.cuh). `scratch`:
// rules::channel_scratch_doubles(n, channels, plane) doubles on the device (a GPU's partials).
// y and dx are stored as `store` says (Note [16-bit stores], kernels/common/half.cuh).
void batchnorm_train(const Exec& e, const float* x, float* y, std::int64_t n, std::int64_t channels,
                     std::int64_t plane, const float* gamma, const float* beta, float eps,
                     float momentum, float* running_mean, float* running_var, float* save_mean,
                     float* save_invstd, bool relu, double* scratch, const BatchSync& sync = {},
                     rules::Store store = rules::Store::kExact);
void batchnorm_eval(const Exec& e, const float* x, float* y, std::int64_t n, std::int64_t channels,
                    std::int64_t plane, const float* gamma, const float* beta, float eps,
                    const float* running_mean, const float* running_var, bool relu,
                    rules::Store store = rules::Store::kExact);
// `frozen`: the backward of an eval-mode forward - save_mean / save_invstd are the running
// statistics' (batchnorm_frozen_stats), constants of the pass: dx = gamma invstd dy.
void batchnorm_backward(const Exec& e, const float* x, const float* relu_y, const float* dy,
                        float* dx, std::int64_t n, std::int64_t channels, std::int64_t plane,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dgamma, float* dbeta, double* scratch, const BatchSync& sync = {},
                        rules::Store store = rules::Store::kExact, bool frozen = false);
// save_mean = running_mean, save_invstd = 1 / sqrt(running_var + eps), per channel.
void batchnorm_frozen_stats(const Exec& e, std::int64_t channels, float eps,
                            const float* running_mean, const float* running_var, float* save_mean,
                            float* save_invstd);

}  // namespace cutrain::nn::backend
