// backend::softmax_cross_entropy_mean: the loss's row pass and its mean, which on the GPU run as
// one one-block launch (Note [loss and mean in one block]) and must give the bits of the two
// launches it replaces - the mean and every gradient element - for batch sizes on both sides of
// kernels::kLossMeanRows, with and without label smoothing and class weights (then D too); and
// the CPU's loops must be the two calls exactly. And the gradient seed (the loss scale S, Note
// [dynamic loss scale]): every gradient S times the unseeded one, bit for bit, the mean unchanged.
#include <gtest/gtest.h>

#include <cmath>
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
  float mean = 0, also = 0, total_weight = 0;
  std::vector<float> dlogits;
};

// fused: softmax_cross_entropy_mean; else softmax_cross_entropy then mean. weighted: class
// weights in [0.25, 3), class 1's 0 (its rows count for nothing).
// seed > 0: the gradients' seed, from device memory.
Result run(Device d, std::int64_t rows, int classes, float eps, bool weighted, bool fused,
           float seed = 0.0F) {
  std::mt19937 rng(static_cast<std::uint32_t>(rows * 131 + classes));
  std::normal_distribution<float> normal(0.0F, 3.0F);
  std::uniform_int_distribution<int> label(0, classes - 1);
  const auto n = static_cast<std::size_t>(rows * classes);
  std::vector<float> logits(n);
  for (float& v : logits) v = normal(rng);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(rows));
  for (auto& l : labels) l = label(rng);
  std::vector<float> weights(static_cast<std::size_t>(classes));
  std::uniform_real_distribution<float> weight(0.25F, 3.0F);
  for (float& w : weights) w = weight(rng);
  weights[1] = 0.0F;
  labels[0] = 0;  // a batch of one row has D > 0 too
  Buffer x(n * sizeof(float), d), y(labels.size() * sizeof(std::int32_t), d),
      dx(n * sizeof(float), d), rowloss(labels.size() * sizeof(float), d),
      out(3 * sizeof(float), d), w(weights.size() * sizeof(float), d), s(sizeof(float), d);
  copy_bytes(s.data(), d, &seed, Device::cpu(), sizeof(seed));
  const float* grad_seed = seed > 0.0F ? s.as<float>() : nullptr;
  copy_bytes(x.data(), d, logits.data(), Device::cpu(), x.bytes());
  copy_bytes(y.data(), d, labels.data(), Device::cpu(), y.bytes());
  copy_bytes(w.data(), d, weights.data(), Device::cpu(), w.bytes());
  Stream stream(d);
  const backend::Exec e{d, stream.native(), nullptr};
  float* o = out.as<float>();
  const backend::ClassWeights cw{weighted ? w.as<float>() : nullptr, o + 2};
  if (fused) {
    backend::softmax_cross_entropy_mean(e, x.as<float>(), y.as<std::int32_t>(), rows, classes, eps,
                                        cw, rowloss.as<float>(), dx.as<float>(), o, o + 1,
                                        grad_seed);
  } else {
    backend::softmax_cross_entropy(e, x.as<float>(), y.as<std::int32_t>(), rows, classes, eps, cw,
                                   rowloss.as<float>(), dx.as<float>(), grad_seed);
    backend::mean(e, rowloss.as<float>(), static_cast<std::size_t>(rows),
                  weighted ? 1.0 : static_cast<double>(rows), o, o + 1);
  }
  stream.synchronize();
  Result r;
  float three[3];
  copy_bytes(three, Device::cpu(), out.data(), d, sizeof(three));
  r.mean = three[0];
  r.also = three[1];
  r.total_weight = three[2];
  if (weighted) {  // D against the host's sum of the rows' weights
    double total = 0.0;
    for (const std::int32_t l : labels) total += weights[static_cast<std::size_t>(l)];
    EXPECT_NEAR(r.total_weight, total, 1e-6 * total);
  }
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
      for (const float eps : {0.0F, 0.1F})
        for (const bool weighted : {false, true}) {
          const Result one = run(d, rows, classes, eps, weighted, true),
                       two = run(d, rows, classes, eps, weighted, false);
          EXPECT_EQ(bits(one.mean), bits(two.mean))
              << rows << " rows, " << classes << " classes, eps " << eps << ", " << weighted;
          EXPECT_EQ(bits(one.also), bits(one.mean));
          if (weighted) {
            EXPECT_EQ(bits(one.total_weight), bits(two.total_weight));
          }
          EXPECT_GT(one.mean, 0.0F);
          EXPECT_EQ(one.dlogits, two.dlogits) << rows << " rows, " << classes << " classes";
        }
}

void check_seed(Device d) {
  const float seed = 4096.0F;
  for (const std::int64_t rows : {7, 300, 5000})
    for (const bool weighted : {false, true})
      for (const bool fused : {false, true}) {
        const Result plain = run(d, rows, 10, 0.1F, weighted, fused),
                     seeded = run(d, rows, 10, 0.1F, weighted, fused, seed);
        EXPECT_EQ(bits(seeded.mean), bits(plain.mean)) << rows << " rows";
        ASSERT_EQ(seeded.dlogits.size(), plain.dlogits.size());
        for (std::size_t i = 0; i < plain.dlogits.size(); ++i)
          ASSERT_EQ(bits(seeded.dlogits[i]), bits(plain.dlogits[i] * seed))
              << rows << " rows, weighted " << weighted << ", fused " << fused << ", element " << i;
      }
  // MSE: 2 (y - t) / N x S.
  const std::size_t n = 999;
  std::vector<float> y(n), t(n);
  for (std::size_t i = 0; i < n; ++i) {
    y[i] = std::sin(static_cast<float>(i));
    t[i] = std::cos(static_cast<float>(i) * 0.5F);
  }
  Buffer by(n * sizeof(float), d), bt(n * sizeof(float), d), sq(n * sizeof(float), d),
      g(n * sizeof(float), d), s(sizeof(float), d);
  copy_bytes(by.data(), d, y.data(), Device::cpu(), by.bytes());
  copy_bytes(bt.data(), d, t.data(), Device::cpu(), bt.bytes());
  copy_bytes(s.data(), d, &seed, Device::cpu(), sizeof(seed));
  Stream stream(d);
  const backend::Exec e{d, stream.native(), nullptr};
  backend::mse(e, by.as<float>(), bt.as<float>(), n, sq.as<float>(), g.as<float>(), s.as<float>());
  stream.synchronize();
  std::vector<float> got(n);
  copy_bytes(got.data(), Device::cpu(), g.data(), d, g.bytes());
  const float inv_n = 1.0F / static_cast<float>(n);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_EQ(bits(got[i]), bits(2.0F * (y[i] - t[i]) * inv_n * seed)) << "element " << i;
}

TEST(LossMean, CpuIsTheTwoLoops) {
  check(Device::cpu());
}

TEST(LossMeanGpu, OneBlockGivesTheBitsOfTwoLaunches) {
  CUTRAIN_REQUIRE_GPU();
  check(Device::cuda(0));
}

TEST(LossSeed, GradientsAreTheSeedTimesTheUnseededOnes) {
  check_seed(Device::cpu());
}
TEST(LossSeedGpu, GradientsAreTheSeedTimesTheUnseededOnes) {
  CUTRAIN_REQUIRE_GPU();
  check_seed(Device::cuda(0));
}

}  // namespace
}  // namespace cutrain::nn
