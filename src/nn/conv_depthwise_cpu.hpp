#pragma once
// Note [depthwise convolution on the CPU]: a depthwise convolution (groups = C: each group one
// input channel, and Co / C output channels - the channel multiplier) is 9 multiply-adds an
// output for a 3x3 kernel. Run as C convolutions of one channel (Note [grouped convolution]) the
// per-call work of the GEMM paths - padding, row-pointer tables, transposes - outweighed them
// (bench/RESULTS.md, Convolutions), so it is a pass of its own over all of a sample's channels,
// one channel's stencil at a time with the taps (i, j) ascending; c = o / (Co / C).
// - Stride 1 (where the implicit GEMM applies): on Note [implicit GEMM on the CPU]'s padded grid
//   a tap is an offset into the padded plane, so each tap is one flat fused multiply-add sweep
//   over the whole grid - long loops that vectorize whatever the width. dX is the same sweep over
//   dY padded by (k - 1) d - p with the kernel flipped; dW[o, i, j] sums dY x the shifted plane
//   in 16 lanes, the lanes then added in order.
// - Otherwise, along output rows: y[o, ho, :] gets w[o, i, j] x[c, ho sh - ph + i dh, : sw +
//   j dw - pw] per tap; dx scatters each dY row back through its taps (o, ho, taps ascending);
//   dW sums per-column chains over the rows, then the columns in order. Taps in the padding
//   are skipped.
// Every element is a fixed chain of std::fma (a vectorized loop gives the scalar loop's bits) and
// nothing depends on the thread count.

#include <cstddef>

#include "kernels/nn/conv.cuh"

namespace cutrain::nn::backend::depthwise {

/// A depthwise convolution: groups = C > 1 (any stride, padding, dilation, multiplier).
bool applies(const rules::ConvGeometry& g);
/// Floats of per-thread scratch for one sample.
std::size_t scratch_floats(const rules::ConvGeometry& g);

/// y [Co, Ho, Wo] (+ bias, nullable) of one sample x [C, H, W], stored as `store` says (Note
/// [16-bit stores], kernels/common/half.cuh; dx below likewise).
void forward_sample(const rules::ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y, float* scratch, rules::Store store);
/// dw [Co, kh kw] = (accumulate ? dw : 0) + this sample's dW; dx [C, H, W] (nullable).
void backward_sample(const rules::ConvGeometry& g, const float* x, const float* dy, const float* w,
                     float* dw, bool accumulate, float* dx, float* scratch, rules::Store store);

}  // namespace cutrain::nn::backend::depthwise
