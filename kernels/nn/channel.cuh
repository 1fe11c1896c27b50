#pragma once
// Per-channel reductions over NCHW activations (BatchNorm2d, a convolution's bias gradient),
// shared by the CUDA kernels (a grid of segments x channels) and the CPU loops (one iteration
// per channel).
//
// Note [channel sums in lanes]: channel c of an [N, C, P] tensor has count = N P values, value j
// at (j / P) C P + c P + j % P. A sum over them is split into T = S x L lanes (L = kChannelLanes,
// S = channel_segments(count)): lane t adds the values j = t, t + T, t + 2T, ... in ascending j,
// in double. Segment s's partial is its lanes s L .. s L + L - 1 added in lane order; the total
// is the partials added in segment order. The GPU gives segment s of channel c to one block,
// lane s L + l to its thread l (adjacent threads read adjacent values: coalesced), and adds the
// partials in a second pass; the CPU walks j once adding into lanes[j % T], then combines the
// same way: the same additions in the same order, so both backends give the same bits (Note
// [bit-identical backends]) on every run. S depends on the count alone - never on the device -
// and grows with it so that the GPU fills its SMs when N P grows from 128 to 100 000 (a conv
// net's first block: 32 channels were 32 blocks on a 132-SM H100, each walking 100 352 values);
// for counts up to L x kLaneValues it is 1, one block per channel as before.
// BatchNorm's formulas (kernels/nn/batchnorm.cuh) over count values.

#include <cstdint>

#include "cutrain/hd.hpp"
#include "kernels/nn/activation.cuh"
#include "kernels/nn/batchnorm.cuh"

namespace cutrain::rules {

inline constexpr int kChannelLanes = 256;        // L: lanes per segment, one block's threads
inline constexpr std::int64_t kLaneValues = 16;  // values per lane a segment aims at
inline constexpr std::int64_t kMaxChannelSegments = 64;

// S for `count` values per channel: ceil(count / (L kLaneValues)), within [1, 64].
CUTRAIN_HD std::int64_t channel_segments(std::int64_t count) {
  const std::int64_t per = kChannelLanes * kLaneValues;
  const std::int64_t s = (count + per - 1) / per;
  return s < 1 ? 1 : (s > kMaxChannelSegments ? kMaxChannelSegments : s);
}

// Where channel c's values lie: x + base + at(j).
struct ChannelView {
  std::int64_t count = 0;     // N P
  std::int64_t plane = 1;     // P
  std::int64_t stride = 1;    // C P
  std::int64_t segments = 1;  // S = channel_segments(count)
  CUTRAIN_HD std::int64_t base(std::int64_t c) const { return c * plane; }
  CUTRAIN_HD std::int64_t at(std::int64_t j) const { return (j / plane) * stride + j % plane; }
  CUTRAIN_HD std::int64_t lanes() const { return segments * kChannelLanes; }  // T
};

CUTRAIN_HD ChannelView channel_view(std::int64_t n, std::int64_t c, std::int64_t plane) {
  return {n * plane, plane, c * plane, channel_segments(n * plane)};
}

// Scratch a GPU channel reduction of x [n, channels, plane] needs, in doubles: two partials per
// segment (BatchNorm2d's two sums per pass) and two totals per channel (its backward's).
CUTRAIN_HD std::int64_t channel_scratch_doubles(std::int64_t n, std::int64_t channels,
                                                std::int64_t plane) {
  return channels * (2 * channel_segments(n * plane) + 2);
}

// Lane t's values in order: j = t, t + T, ... at offsets q stride + r (q, r = j / P, j % P),
// advanced without a division per value (the GPU's 64-bit division is a long software routine).
struct LaneCursor {
  std::int64_t j, q, r, step_q, step_r;
  CUTRAIN_HD LaneCursor(const ChannelView& v, std::int64_t lane)
      : j(lane),
        q(lane / v.plane),
        r(lane % v.plane),
        step_q(v.lanes() / v.plane),
        step_r(v.lanes() % v.plane) {}
  CUTRAIN_HD std::int64_t at(const ChannelView& v) const { return q * v.stride + r; }
  CUTRAIN_HD void next(const ChannelView& v) {
    j += v.lanes();
    q += step_q;
    r += step_r;
    if (r >= v.plane) {
      r -= v.plane;
      ++q;
    }
  }
};

// One segment's partial: its L lanes added in lane order.
CUTRAIN_HD double combine_lanes(const double* lanes) {
  double s = 0.0;
  for (int l = 0; l < kChannelLanes; ++l) s += lanes[l];
  return s;
}
// The channel's total: the S partials added in segment order (from the first, so that S = 1
// gives the partial itself).
CUTRAIN_HD double combine_segments(const double* partials, std::int64_t segments) {
  double s = partials[0];
  for (std::int64_t k = 1; k < segments; ++k) s += partials[k];
  return s;
}

// Where a later pass reads a channel's earlier sum: the segments' partials of this process's
// batch (stride S), or - Note [synchronized batch statistics] (kernels/nn/batch_sync.hpp) - one
// total per channel summed over the ranks (stride 1), over the ranks' count. Either way the
// value is combine_segments' (of one total: the total itself), so one kernel serves both.
struct ChannelSums {
  const double* values = nullptr;
  std::int64_t stride = 1;        // values per channel
  const double* count = nullptr;  // the values summed over the ranks; null: the view's count
  CUTRAIN_HD double total(std::int64_t c) const {
    return combine_segments(values + c * stride, stride);
  }
  CUTRAIN_HD double count_or(std::int64_t own) const {
    return count != nullptr ? *count : static_cast<double>(own);
  }
};

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
template <bool kRelu>  // whether relu_y is given, known where the caller is compiled
CUTRAIN_HD float bn_upstream_of(const float* relu_y, const float* dy, std::int64_t at) {
  if constexpr (kRelu) {
    return activation_backward(Activation::kRelu, relu_y[at], relu_y[at], dy[at], 0.0F);
  } else {
    return dy[at];
  }
}
CUTRAIN_HD float bn_upstream(const float* relu_y, const float* dy, std::int64_t at) {
  return relu_y == nullptr ? bn_upstream_of<false>(relu_y, dy, at)
                           : bn_upstream_of<true>(relu_y, dy, at);
}

}  // namespace cutrain::rules
