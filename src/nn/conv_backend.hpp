#pragma once
// The convolution family's backend dispatch (src/nn/backend.hpp's twin for NCHW layers): each
// function runs the CPU loop over the shared rules (kernels/nn/conv.cuh, pool.cuh, channel.cuh)
// or launches the kernel (kernels/nn/conv.cu). The GEMMs in between are backend::gemm's.

#include <cstdint>

#include "kernels/nn/conv.cuh"
#include "kernels/nn/pool.cuh"
#include "src/nn/backend.hpp"

namespace cutrain::nn::backend {

// Note [convolution as one GEMM per chunk]: col [K, nb P] from x [nb, C, H, W]; dx from dcol.
void im2col(const Exec& e, const rules::ConvGeometry& g, const float* x, std::int64_t nb,
            float* col);
void col2im(const Exec& e, const rules::ConvGeometry& g, const float* dcol, std::int64_t nb,
            float* dx);
// y [nb, Co, P] = ycol [Co, nb P] + bias (nullable) per channel; and the reverse permute.
void gemm_to_nchw(const Exec& e, const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                  const float* bias, float* y);
void nchw_to_gemm(const Exec& e, const rules::ConvGeometry& g, const float* dy, std::int64_t nb,
                  float* dycol);
// out[c] = sum of channel c of x [n, channels, plane] (Note [channel sums in lanes]).
void channel_sum(const Exec& e, const float* x, std::int64_t n, std::int64_t channels,
                 std::int64_t plane, float* out);
// Pooling over n samples; index [n, C, Ho, Wo] (max pooling's kept positions, else unused).
void pool_forward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                  const float* x, float* y, std::int32_t* index);
void pool_backward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                   const float* dy, const std::int32_t* index, float* dx);
// BatchNorm2d over x [n, channels, plane] (the formulas of kernels/nn/batchnorm.cuh).
void batchnorm2d_train(const Exec& e, const float* x, float* y, std::int64_t n,
                       std::int64_t channels, std::int64_t plane, const float* gamma,
                       const float* beta, float eps, float momentum, float* running_mean,
                       float* running_var, float* save_mean, float* save_invstd);
void batchnorm2d_eval(const Exec& e, const float* x, float* y, std::int64_t n,
                      std::int64_t channels, std::int64_t plane, const float* gamma,
                      const float* beta, float eps, const float* running_mean,
                      const float* running_var);
void batchnorm2d_backward(const Exec& e, const float* x, const float* dy, float* dx, std::int64_t n,
                          std::int64_t channels, std::int64_t plane, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dgamma,
                          float* dbeta);

}  // namespace cutrain::nn::backend
