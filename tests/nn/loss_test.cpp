// backend::softmax_cross_entropy_mean: the loss's row pass and its mean, which on the GPU run as
// one one-block launch (Note [loss and mean in one block]) and must give the bits of the two
// launches it replaces - the mean and every gradient element - for batch sizes on both sides of
// kernels::kLossMeanRows, with and without label smoothing; and the CPU's loops must be the two
// calls exactly.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/stream.hpp"
#include "src/nn/backend.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

struct Result {
  float mean = 0, also = 0;
  std::vector<float> dlogits;
};

// fused: softmax_cross_entropy_mean; else softmax_cross_entropy then mean.
Result run(Device d, std::int64_t rows, int classes, float eps, bool fused) {
  std::mt19937 rng(static_cast<std::uint32_t>(rows * 131 + classes));
  std::normal_distribution<float> normal(0.0F, 3.0F);
  std::uniform_int_distribution<int> label(0, classes - 1);
  const auto n = static_cast<std::size_t>(rows * classes);
  std::vector<float> logits(n);
  for (float& v : logits) v = normal(rng);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(rows));
  for (auto& l : labels) l = label(rng);
  Buffer x(n * sizeof(float), d), y(labels.size() * sizeof(std::int32_t), d),
      dx(n * sizeof(float), d), rowloss(labels.size() * sizeof(float), d),
      out(2 * sizeof(float), d);
  copy_bytes(x.data(), d, logits.data(), Device::cpu(), x.bytes());
  copy_bytes(y.data(), d, labels.data(), Device::cpu(), y.bytes());
  Stream stream(d);
  const backend::Exec e{d, stream.native(), nullptr};
  float* o = out.as<float>();
  if (fused) {
    backend::softmax_cross_entropy_mean(e, x.as<float>(), y.as<std::int32_t>(), rows, classes, eps,
                                        rowloss.as<float>(), dx.as<float>(), o, o + 1);
  } else {
    backend::softmax_cross_entropy(e, x.as<float>(), y.as<std::int32_t>(), rows, classes, eps,
                                   rowloss.as<float>(), dx.as<float>());
    backend::mean(e, rowloss.as<float>(), static_cast<std::size_t>(rows), static_cast<double>(rows),
                  o, o + 1);
  }
  stream.synchronize();
  Result r;
  float both[2];
  copy_bytes(both, Device::cpu(), out.data(), d, sizeof(both));
  r.mean = both[0];
  r.also = both[1];
  r.dlogits.resize(n);
  copy_bytes(r.dlogits.data(), Device::cpu(), dx.data(), d, dx.bytes());
  return r;
}

std::uint32_t bits(float v) {
  std::uint32_t b = 0;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}

void check(Device d) {
  for (const std::int64_t rows : {1, 7, 128, 300, 4096, 5000})
    for (const int classes : {10, 37})
      for (const float eps : {0.0F, 0.1F}) {
        const Result one = run(d, rows, classes, eps, true),
                     two = run(d, rows, classes, eps, false);
        EXPECT_EQ(bits(one.mean), bits(two.mean))
            << rows << " rows, " << classes << " classes, eps " << eps;
        EXPECT_EQ(bits(one.also), bits(one.mean));
        EXPECT_GT(one.mean, 0.0F);
        EXPECT_EQ(one.dlogits, two.dlogits) << rows << " rows, " << classes << " classes";
      }
}

TEST(LossMean, CpuIsTheTwoLoops) {
  check(Device::cpu());
}

TEST(LossMeanGpu, OneBlockGivesTheBitsOfTwoLaunches) {
  CUTRAIN_REQUIRE_GPU();
  check(Device::cuda(0));
}

}  // namespace
}  // namespace cutrain::nn
