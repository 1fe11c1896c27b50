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
            float* dx, rules::Store store = rules::Store::kExact);
// Note [convolution per sample on the CPU]: the CPU lowers one sample at a time, so that its
// col [K, P] stays in the core's cache between im2col writing it and the GEMM packing it, and
// the sample's output [Co, P] is already its NCHW plane (no permute). The batch is split into
// min(batch, 16) parts of consecutive samples - a split that depends on the batch alone - each
// part run by one thread with single-threaded GEMMs (OpenBLAS runs serially inside an OpenMP
// region); each part sums its own dW, and the parts' sums are added in part order, so the bits
// do not depend on the thread count. A grouped convolution runs its groups one after the other
// within each sample (Note [grouped convolution], kernels/nn/conv.cuh); a depthwise one all its
// channels in one pass (Note [depthwise convolution on the CPU], src/nn/conv_depthwise_cpu.hpp).
// Stride-1 convolutions (the default CNN's) skip the lowering altogether: Note [implicit GEMM on
// the CPU] (src/nn/conv_direct_cpu.hpp). Measured, the default CNN's convolutions on 2 cores:
// bench/RESULTS.md, Convolutions. The GPU keeps the chunks (large GEMMs, few launches).
std::size_t conv_cpu_workspace_floats(const rules::ConvGeometry& g, std::int64_t batch);
// `store`, here and for col2im and gemm_to_nchw: how y and dx are stored (Note [16-bit stores],
// kernels/common/half.cuh).
void conv_forward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x,
                      std::int64_t batch, const float* w, const float* bias, float* y,
                      float* workspace, rules::Store store = rules::Store::kExact);
// dW (overwritten) and, if dx is not null, dx; db is channel_sum's.
void conv_backward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x, const float* dy,
                       std::int64_t batch, const float* w, float* dw, float* dx, float* workspace,
                       rules::Store store = rules::Store::kExact);
// The GPU's lowering (where cuDNN does not run a convolution; Note [convolution as one GEMM per
// chunk]): chunks of nb samples, each lowered into `workspace` - col [K, nb P], then the
// GEMM-ordered output or dY [Co, nb P] - its GEMMs one strided batch over the groups (Note
// [grouped convolution]).
// Backend-neutral, so the CPU runs it in the tests against its per-sample path.
void conv_forward_chunks(const Exec& e, const rules::ConvGeometry& g, std::int64_t nb,
                         const float* x, std::int64_t batch, const float* w, const float* bias,
                         float* y, float* workspace, rules::Store store = rules::Store::kExact);
// dW (overwritten; chunks summed in order) and, if dx is not null, dx.
void conv_backward_chunks(const Exec& e, const rules::ConvGeometry& g, std::int64_t nb,
                          const float* x, const float* dy, std::int64_t batch, const float* w,
                          float* dw, float* dx, float* workspace,
                          rules::Store store = rules::Store::kExact);
// y [nb, Co, P] = ycol [Co, nb P] + bias (nullable) per channel; and the reverse permute.
void gemm_to_nchw(const Exec& e, const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                  const float* bias, float* y, rules::Store store = rules::Store::kExact);
void nchw_to_gemm(const Exec& e, const rules::ConvGeometry& g, const float* dy, std::int64_t nb,
                  float* dycol);
// out[c] = sum of channel c of x [n, channels, plane] (Note [channel sums in lanes]). `scratch`,
// as in BatchNorm's passes (src/nn/batchnorm_backend.hpp): rules::channel_scratch_doubles(n,
// channels, plane) doubles on the device, for the segments' partials (a GPU's; the CPU sums in
// its own lanes).
void channel_sum(const Exec& e, const float* x, std::int64_t n, std::int64_t channels,
                 std::int64_t plane, float* out, double* scratch);
// Pooling over n samples; index [n, C, Ho, Wo] (max pooling's kept positions, else unused).
void pool_forward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                  const float* x, float* y, std::int32_t* index);
void pool_backward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                   const float* dy, const std::int32_t* index, float* dx);
}  // namespace cutrain::nn::backend
