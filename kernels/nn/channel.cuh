#pragma once
// Per-channel reductions over NCHW activations (BatchNorm2d, a convolution's bias gradient),
// shared by the CUDA kernels (one block per channel) and the CPU loops (one iteration per
// channel).
//
// Note [channel sums in lanes]: channel c of an [N, C, P] tensor has count = N P values, value j
// at (j / P) C P + c P + j % P. A sum over them is split into kChannelLanes lanes - lane l adds
// the values j = l, l + L, l + 2L, ... in ascending j, in double - and the lanes are combined in
// lane order. The GPU block gives lane l to thread l (adjacent threads read adjacent values:
// coalesced), the CPU walks j once adding into lanes[j % L]: the same additions in the same order,
// so both backends give the same bits (Note [bit-identical backends]) on every run.
// BatchNorm2d's formulas are BatchNorm1d's (kernels/nn/batchnorm.cuh) over count values.

#include <cstdint>

#include "cutrain/hd.hpp"
#include "kernels/nn/activation.cuh"
#include "kernels/nn/batchnorm.cuh"

namespace cutrain::rules {

inline constexpr int kChannelLanes = 256;

// Where channel c's values lie: x + base + at(j).
struct ChannelView {
  std::int64_t count = 0;   // N P
  std::int64_t plane = 1;   // P
  std::int64_t stride = 1;  // C P
  CUTRAIN_HD std::int64_t base(std::int64_t c) const { return c * plane; }
  CUTRAIN_HD std::int64_t at(std::int64_t j) const { return (j / plane) * stride + j % plane; }
};

CUTRAIN_HD ChannelView channel_view(std::int64_t n, std::int64_t c, std::int64_t plane) {
  return {n * plane, plane, c * plane};
}

CUTRAIN_HD double combine_lanes(const double* lanes) {
  double s = 0.0;
  for (int l = 0; l < kChannelLanes; ++l) s += lanes[l];
  return s;
}

// BatchNorm2d, the values each lane adds in each pass (x, dy: the channel's base pointers; at:
// ChannelView::at of the value).
CUTRAIN_HD double bn_square_dev(const float* x, std::int64_t at, double mean) {
  const double d = x[at] - mean;
  return d * d;
}
CUTRAIN_HD double bn_dy_xhat(const float* x, float dy, std::int64_t at, float mean, float invstd) {
  return static_cast<double>(dy) * batchnorm_xhat(x[at], mean, invstd);
}

// Note [BatchNorm2d and ReLU in one pass]: a BatchNorm2d directly followed by a ReLU (each conv
// block's BN -> ReLU) is run as one layer: the forward writes relu(bn(x)) and never the BN's own
// output; the backward takes the ReLU's output y and the gradient dy above it, and reads
// dz = ReLU's backward rule (y in place of its input: y > 0 iff z > 0, NaN included) wherever
// the BatchNorm backward reads its incoming gradient. The rules are the layers' own, so the bits
// are those of the two layers run one by one (in bf16 / fp16 too: relu commutes with rounding,
// and dz is dy or 0); a pass over the activation and its gradient fewer each way, forward and
// backward. `relu_y` null: a plain BatchNorm2d.
CUTRAIN_HD float bn_output(float z, bool relu) {
  return relu ? activation_forward(Activation::kRelu, z, 0.0F) : z;
}
CUTRAIN_HD float bn_upstream(const float* relu_y, const float* dy, std::int64_t at) {
  return relu_y == nullptr
             ? dy[at]
             : activation_backward(Activation::kRelu, relu_y[at], relu_y[at], dy[at], 0.0F);
}

}  // namespace cutrain::rules
