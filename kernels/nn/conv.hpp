#pragma once
// Host-callable launchers of the convolution, pooling and per-channel kernels (CUTRAIN_WITH_CUDA
// builds): thin launches around kernels/nn/conv.cuh, pool.cuh and channel.cuh. Pointers on the
// current device, work ordered on `stream`.

#include <cstdint>

#include "cutrain/stream.hpp"
#include "kernels/common/half.cuh"
#include "kernels/nn/batch_sync.hpp"
#include "kernels/nn/conv.cuh"
#include "kernels/nn/pool.cuh"

namespace cutrain::kernels {

// col [K, nb P] from the chunk x [nb, C, H, W] (Note [convolution as one GEMM per chunk])
void launch_im2col(const rules::ConvGeometry& g, const float* x, std::int64_t nb, float* col,
                   NativeStream stream);
// dx [nb, C, H, W] from dcol [K, nb P]. `store` here and below: how the pass stores a layer's
// output or input gradient (Note [16-bit stores], kernels/common/half.cuh).
void launch_col2im(const rules::ConvGeometry& g, const float* dcol, std::int64_t nb, float* dx,
                   rules::Store store, NativeStream stream);
// y [nb, Co, P] = ycol [Co, nb P] permuted, + bias[co] (bias nullable)
void launch_gemm_to_nchw(const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                         const float* bias, float* y, rules::Store store, NativeStream stream);
// y [n, channels, plane] = stored(y + bias[channel]) in place (bias nullable: the rounding alone):
// after a convolution cuDNN wrote (Note [convolutions on cuDNN], src/nn/conv_cudnn.hpp).
void launch_channel_bias(float* y, const float* bias, std::int64_t n, std::int64_t channels,
                         std::int64_t plane, rules::Store store, NativeStream stream);
// dycol [Co, nb P] = dy [nb, Co, P] permuted
void launch_nchw_to_gemm(const rules::ConvGeometry& g, const float* dy, std::int64_t nb,
                         float* dycol, NativeStream stream);
// out[c] = the sum of channel c of x [n, channels, plane] (Note [channel sums in lanes]). Each
// per-channel reduction takes rules::channel_scratch_doubles(n, channels, plane) of device
// memory for the segments' partials.
void launch_channel_sum(const float* x, std::int64_t n, std::int64_t channels, std::int64_t plane,
                        float* out, double* scratch, NativeStream stream);
void launch_pool_forward(rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                         const float* x, float* y, std::int32_t* index, NativeStream stream);
void launch_pool_backward(rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                          const float* dy, const std::int32_t* index, float* dx,
                          NativeStream stream);
// BatchNorm1d / 2d over x [n, channels, plane] (kernels/nn/batchnorm.cuh formulas, channel.cuh
// sums): training: the segments' sums, a pass per channel (statistics, running statistics), then y
// element-wise; eval element-wise.
// `relu` / `relu_y`: a ReLU fused after it (Note [BatchNorm2d and ReLU in one pass]).
void launch_batchnorm_train(const float* x, float* y, std::int64_t n, std::int64_t channels,
                            std::int64_t plane, const float* gamma, const float* beta, float eps,
                            float momentum, float* running_mean, float* running_var,
                            float* save_mean, float* save_invstd, bool relu, double* scratch,
                            const BatchSync& sync, rules::Store store, NativeStream stream);
void launch_batchnorm_eval(const float* x, float* y, std::int64_t n, std::int64_t channels,
                           std::int64_t plane, const float* gamma, const float* beta, float eps,
                           const float* running_mean, const float* running_var, bool relu,
                           rules::Store store, NativeStream stream);
void launch_batchnorm_backward(const float* x, const float* relu_y, const float* dy, float* dx,
                               std::int64_t n, std::int64_t channels, std::int64_t plane,
                               const float* gamma, const float* save_mean, const float* save_invstd,
                               float* dgamma, float* dbeta, double* scratch, const BatchSync& sync,
                               rules::Store store, bool frozen, NativeStream stream);
// Eval mode's backward reads the running statistics as save_mean / save_invstd: one thread per
// channel writes them (mean = running_mean, invstd = 1 / sqrt(running_var + eps)).
void launch_batchnorm_frozen_stats(std::int64_t channels, float eps, const float* running_mean,
                                   const float* running_var, float* save_mean, float* save_invstd,
                                   NativeStream stream);

}  // namespace cutrain::kernels
