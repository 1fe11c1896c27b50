// Note [channel sums in lanes] (kernels/nn/channel.cuh): a channel's count values summed in
// T = S x L lanes, each segment's L lanes in lane order, then the segments in order. Checked here:
// the segment count, the lane cursor's walk, the order itself (a sum whose value depends on which
// values share a lane, against its closed form), BatchNorm2d over several segments against its
// formula in long double, BatchNorm1d (a plane of 1) against its columns' sums in row order, and
// - on a GPU - the same bits as the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "kernels/nn/channel.cuh"
#include "nn_fixture.hpp"
#include "src/nn/conv_backend.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::to_host;

TEST(ChannelSums, SegmentsGrowWithTheCountAlone) {
  constexpr std::int64_t kPerSegment = rules::kChannelLanes * rules::kLaneValues;  // 4096
  EXPECT_EQ(rules::channel_segments(0), 1);
  EXPECT_EQ(rules::channel_segments(128), 1);
  EXPECT_EQ(rules::channel_segments(kPerSegment), 1);
  EXPECT_EQ(rules::channel_segments(kPerSegment + 1), 2);
  EXPECT_EQ(rules::channel_segments(128 * 28 * 28), 25);  // the default CNN's first block
  EXPECT_EQ(rules::channel_segments(128 * 14 * 14), 7);   // its second
  EXPECT_EQ(rules::channel_segments(std::int64_t{1} << 40), rules::kMaxChannelSegments);
}

// Every lane's cursor visits j = t, t + T, ... at ChannelView::at(j), and the lanes together visit
// each value once - planes shorter and longer than T, counts of 1 to 64 segments.
TEST(ChannelSums, LaneCursorWalksEachValueOnceInOrder) {
  struct Case {
    std::int64_t n, c, plane;
  };
  for (const Case k :
       {Case{3, 2, 1}, Case{5, 3, 1000}, Case{64, 2, 784}, Case{1, 1, 300000}, Case{7, 4, 13}}) {
    const rules::ChannelView v = rules::channel_view(k.n, k.c, k.plane);
    std::vector<int> seen(static_cast<std::size_t>(v.count), 0);
    for (std::int64_t t = 0; t < v.lanes(); ++t) {
      std::int64_t want = t;
      for (rules::LaneCursor cur(v, t); cur.j < v.count; cur.next(v), want += v.lanes()) {
        ASSERT_EQ(cur.j, want);
        ASSERT_EQ(cur.at(v), v.at(cur.j)) << "lane " << t << " value " << cur.j;
        ++seen[static_cast<std::size_t>(cur.j)];
      }
    }
    for (std::size_t j = 0; j < seen.size(); ++j) ASSERT_EQ(seen[j], 1) << "value " << j;
  }
}

// Values 2^60 at j = 0 and -2^60 at j = 1, every other value 1. In double, 2^60 + 1 is 2^60: the
// ones that share lane 0 or lane 1 with the large values vanish, and the large values cancel when
// segment 0 adds its lanes. So the sum is count - 2 minus the other values of lanes 0 and 1 - a
// number fixed by T, which the closed form computes from the note's definition.
TEST(ChannelSums, EachLaneAddsItsOwnValuesThenTheLanesInOrder) {
  const std::int64_t n = 6, channels = 3, plane = 1500;  // 9000 values: 3 segments, T = 768
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  ASSERT_EQ(v.segments, 3);
  std::vector<float> x(static_cast<std::size_t>(n * channels * plane), 1.0F);
  for (std::int64_t c = 0; c < channels; ++c) {
    x[static_cast<std::size_t>(v.base(c) + v.at(0))] = std::ldexp(1.0F, 60);
    x[static_cast<std::size_t>(v.base(c) + v.at(1))] = -std::ldexp(1.0F, 60);
  }
  std::vector<float> out(static_cast<std::size_t>(channels));
  backend::channel_sum(backend::Exec{Device::cpu()}, x.data(), n, channels, plane, out.data(),
                       nullptr);
  auto values_in_lane = [&](std::int64_t t) { return (v.count - t + v.lanes() - 1) / v.lanes(); };
  const std::int64_t lost = (values_in_lane(0) - 1) + (values_in_lane(1) - 1);
  for (std::int64_t c = 0; c < channels; ++c)
    EXPECT_EQ(out[static_cast<std::size_t>(c)], static_cast<float>(v.count - 2 - lost))
        << "channel " << c;
}

// BatchNorm2d with its statistics over 2 segments, against torch's formulas in long double: the
// BN alone (a 1x1 conv after it; its input gradient is what the BN's backward receives).
TEST(ChannelSums, BatchNorm2dOverSeveralSegmentsFollowsTheFormula) {
  const std::int64_t n = 6, c = 3, plane = 32 * 32;  // 6144 values per channel: 2 segments
  ASSERT_EQ(rules::channel_segments(n * plane), 2);
  const Shape image{c, 32, 32};
  Sequential m(numel(image));
  m.emplace<Unflatten>(1, image).emplace<BatchNorm2d>(c).emplace<Flatten>();
  m.build(Device::cpu(), 3);
  std::mt19937_64 gen(9);
  std::normal_distribution<float> normal(3.0F, 2.0F);
  std::vector<float> xs(static_cast<std::size_t>(n * c * plane)), dys(xs.size());
  for (float& val : xs) val = normal(gen);
  for (float& val : dys) val = normal(gen);
  DeviceMatrix x(xs, n, c * plane, Device::cpu()), dy(dys, n, c * plane, Device::cpu()),
      dx(n, c * plane, Device::cpu());
  const std::vector<float> y = to_host(m.forward(x.m));
  m.backward(dy.m, nullptr, &dx.m);
  const std::vector<float> dxs = to_host(dx.m);
  const std::vector<float> dgamma = m.gradients().tensor_to_host("layers.1.weight");
  const std::vector<float> dbeta = m.gradients().tensor_to_host("layers.1.bias");
  const std::vector<float> rm = m.buffers().tensor_to_host("layers.1.running_mean");
  const std::vector<float> rv = m.buffers().tensor_to_host("layers.1.running_var");
  const long double count = static_cast<long double>(n * plane);
  for (std::int64_t ch = 0; ch < c; ++ch) {
    auto at = [&](std::int64_t s, std::int64_t p) {
      return static_cast<std::size_t>((s * c + ch) * plane + p);
    };
    long double sum = 0, sq = 0, sdy = 0, sdyx = 0, magnitude = 0;
    for (std::int64_t s = 0; s < n; ++s)
      for (std::int64_t p = 0; p < plane; ++p) sum += xs[at(s, p)];
    const long double mean = sum / count;
    for (std::int64_t s = 0; s < n; ++s)
      for (std::int64_t p = 0; p < plane; ++p) sq += (xs[at(s, p)] - mean) * (xs[at(s, p)] - mean);
    const long double var = sq / count, invstd = 1.0L / std::sqrt(var + 1e-5L);
    for (std::int64_t s = 0; s < n; ++s)
      for (std::int64_t p = 0; p < plane; ++p) {
        sdy += dys[at(s, p)];
        sdyx += dys[at(s, p)] * (xs[at(s, p)] - mean) * invstd;
        magnitude += std::fabs(dys[at(s, p)]) * (1 + std::fabs((xs[at(s, p)] - mean) * invstd));
      }
    // The layer's x-hat uses the fp32 mean and 1/std: each term off by a few fp32 ulps of it.
    const long double tolerance = 5e-7L * magnitude;
    const auto k = static_cast<std::size_t>(ch);
    EXPECT_NEAR(rm[k], 0.1L * mean, 1e-6) << ch;
    EXPECT_NEAR(rv[k], 0.9L + 0.1L * var * count / (count - 1), 1e-5) << ch;
    EXPECT_NEAR(dbeta[k], sdy, tolerance) << ch;
    EXPECT_NEAR(dgamma[k], sdyx, tolerance) << ch;
    for (std::int64_t s = 0; s < n; ++s)
      for (std::int64_t p = 0; p < plane; p += 97) {
        const long double xhat = (xs[at(s, p)] - mean) * invstd;
        EXPECT_NEAR(y[at(s, p)], xhat, 1e-5) << ch;
        const long double want = invstd / count * (count * dys[at(s, p)] - sdy - xhat * sdyx);
        EXPECT_NEAR(dxs[at(s, p)], want, 1e-5) << ch;
      }
  }
}

// BatchNorm1d is the same code over [B, F, 1]. Up to 256 rows each lane holds one row, so the
// sums are a column's in row order: the running statistics equal the sequential double sums'
// values exactly.
TEST(ChannelSums, BatchNorm1dSumsItsColumnsInRowOrder) {
  const std::int64_t rows = 200, features = 7;
  Sequential m(features);
  m.emplace<BatchNorm1d>(features, 1e-5F, 0.5F);
  m.build(Device::cpu(), 1);
  std::mt19937_64 gen(5);
  std::lognormal_distribution<float> spread(0.0F, 3.0F);  // magnitudes where order shows
  std::vector<float> xs(static_cast<std::size_t>(rows * features));
  for (float& val : xs) val = spread(gen) * (gen() % 2 == 0 ? 1.0F : -1.0F);
  DeviceMatrix x(xs, rows, features, Device::cpu());
  m.forward(x.m);
  const std::vector<float> rm = m.buffers().tensor_to_host("layers.0.running_mean");
  const std::vector<float> rv = m.buffers().tensor_to_host("layers.0.running_var");
  for (std::int64_t c = 0; c < features; ++c) {
    double sum = 0.0, ss = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) sum += xs[static_cast<std::size_t>(r * features + c)];
    const double mean = sum / static_cast<double>(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      const double d = xs[static_cast<std::size_t>(r * features + c)] - mean;
      ss += d * d;
    }
    const double unbiased = ss / static_cast<double>(rows) * rows / (rows - 1);
    EXPECT_EQ(rm[static_cast<std::size_t>(c)], static_cast<float>(0.5 * mean)) << c;
    EXPECT_EQ(rv[static_cast<std::size_t>(c)], static_cast<float>(0.5 + 0.5 * unbiased)) << c;
  }
}

struct StepRun {
  std::vector<float> y, dx;
  std::vector<std::vector<float>> grads, buffers;
};

// One training forward and backward of `m` on random x and top gradient dy.
StepRun run(Sequential& m, std::int64_t n) {
  const Device d = m.device();
  const std::int64_t f = m.input_features();
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.5F, 2.0F);
  std::vector<float> xs(static_cast<std::size_t>(n * f));
  std::vector<float> dys(static_cast<std::size_t>(n * m.output_features()));
  for (float& val : xs) val = normal(gen);
  for (float& val : dys) val = normal(gen);
  DeviceMatrix x(xs, n, f, d), dy(dys, n, m.output_features(), d), dx(n, f, d);
  StepRun r;
  r.y = to_host(m.forward(x.m));
  m.backward(dy.m, nullptr, &dx.m);
  r.dx = to_host(dx.m);
  r.grads = testing::all_tensors(m.gradients());
  r.buffers = testing::all_tensors(m.buffers());
  return r;
}

// 16 x 40 x 40 = 25 600 values per channel: 7 segments. BatchNorm2d alone, fused with its ReLU,
// and a convolution's bias gradient (channel_sum of the top gradient; its other results pass
// through GEMMs, which cuBLAS and OpenBLAS add in other orders).
TEST(ChannelSumsGpu, SeveralSegmentsGiveTheCpusBits) {
  CUTRAIN_REQUIRE_GPU();
  const Shape image{5, 40, 40};
  ASSERT_EQ(rules::channel_segments(16 * 40 * 40), 7);
  for (const bool relu : {false, true}) {
    auto model = [&](Device d) {
      Sequential m(numel(image));
      m.emplace<Unflatten>(1, image).emplace<BatchNorm2d>(5);
      if (relu) m.emplace<Activation>(Activation::Kind::kRelu);
      m.emplace<Flatten>();
      m.build(d, 3);
      return m;
    };
    Sequential cpu_model = model(Device::cpu()), gpu_model = model(Device::cuda(0));
    const StepRun cpu = run(cpu_model, 16), gpu = run(gpu_model, 16);
    const std::string what = relu ? "BatchNorm2d + ReLU" : "BatchNorm2d";
    EXPECT_EQ(cpu.y, gpu.y) << what;
    EXPECT_EQ(cpu.dx, gpu.dx) << what;
    EXPECT_EQ(cpu.grads, gpu.grads) << what;
    EXPECT_EQ(cpu.buffers, gpu.buffers) << what;
  }
  // BatchNorm1d at 300 rows: lanes holding two rows each.
  Sequential cpu_bn(40), gpu_bn(40);
  cpu_bn.emplace<BatchNorm1d>(40);
  gpu_bn.emplace<BatchNorm1d>(40);
  cpu_bn.build(Device::cpu(), 3);
  gpu_bn.build(Device::cuda(0), 3);
  const StepRun cpu1 = run(cpu_bn, 300), gpu1 = run(gpu_bn, 300);
  EXPECT_EQ(cpu1.y, gpu1.y) << "BatchNorm1d";
  EXPECT_EQ(cpu1.dx, gpu1.dx) << "BatchNorm1d";
  EXPECT_EQ(cpu1.grads, gpu1.grads) << "BatchNorm1d";
  EXPECT_EQ(cpu1.buffers, gpu1.buffers) << "BatchNorm1d";
  auto conv = [&](Device d) {
    Sequential m(numel(image));
    m.emplace<Unflatten>(1, image).emplace<Conv2d>(5, 2, 1).emplace<Flatten>();
    m.build(d, 3);
    return m;
  };
  Sequential cpu_model = conv(Device::cpu()), gpu_model = conv(Device::cuda(0));
  const StepRun cpu = run(cpu_model, 16), gpu = run(gpu_model, 16);
  ASSERT_EQ(cpu.grads.size(), 2U);  // weight, bias
  EXPECT_EQ(cpu.grads[1], gpu.grads[1]);
}

}  // namespace
}  // namespace cutrain::nn
