#pragma once
// Note [channel sums in lanes] (kernels/nn/channel.cuh), the CPU side: the loops that add a
// channel's values into the lanes the GPU threads use, in their order, so that both backends
// give the same bits (channel_sum, BatchNorm1d and BatchNorm2d).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/nn/channel.cuh"

namespace cutrain::nn::backend::detail {

// One pass over the channel in ascending j, value j added into lane j % T - per lane the
// additions the GPU thread of that lane makes, in its order. Calls f(j, offset of value j) for a
// channel's values in ascending j, with no division per value (ChannelView::at's, which the GPU
// lanes pay, done by the loop nest here).
template <class F>
inline void for_channel(const rules::ChannelView& v, const F& f) {
  std::int64_t j = 0;
  for (std::int64_t base = 0; j < v.count; base += v.stride)
    for (std::int64_t p = 0; p < v.plane; ++p, ++j) f(j, base + p);
}

// for_channel's order cut into runs of consecutive j that map to consecutive lanes (no wrap
// within a run): body(first lane, offset of the run's first value, run length). A run's
// additions into lanes [lane, lane + run) vectorize and are, per lane, the same additions in the
// same order as one value at a time (and as the GPU lanes make).
template <class Body>
inline void for_lane_runs(const rules::ChannelView& v, const Body& body) {
  const std::int64_t lanes = v.lanes();
  std::int64_t j = 0;
  for (std::int64_t base = 0; j < v.count; base += v.stride)
    for (std::int64_t p = 0; p < v.plane;) {
      const std::int64_t lane = j % lanes;
      const std::int64_t run = std::min(v.plane - p, lanes - lane);
      body(lane, base + p, run);
      p += run;
      j += run;
    }
}

// The T lanes' total: each segment's L lanes in lane order, then the segments in order.
inline double combine(const rules::ChannelView& v, const double* lanes) {
  double partials[rules::kMaxChannelSegments] = {};
  for (std::int64_t s = 0; s < v.segments; ++s)
    partials[s] = rules::combine_lanes(lanes + s * rules::kChannelLanes);
  return rules::combine_segments(partials, v.segments);
}

template <class Value>  // value(offset)
inline double lane_sum(const rules::ChannelView& v, const Value& value) {
  std::vector<double> lanes(static_cast<std::size_t>(v.lanes()), 0.0);
  for_lane_runs(v, [&](std::int64_t lane, std::int64_t at, std::int64_t run) {
    double* l = lanes.data() + lane;
#pragma omp simd
    for (std::int64_t t = 0; t < run; ++t) l[t] += value(at + t);
  });
  return combine(v, lanes.data());
}

}  // namespace cutrain::nn::backend::detail
