// find_lr: the divergence it reports against the textbook bound for gradient descent on a
// quadratic (no step with lr < 2 / lambda_max(H) can raise the loss), the sweep's lrs and
// smoothing against their formulas, the model and optimizer put back bit for bit (a training
// run after a sweep is the run without it), and full batches only.
#include "cutrain/train/lr_finder.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/resume_anywhere.hpp"
#include "trainer_fixture.hpp"

namespace cutrain::train {
namespace {

// y = x . w + 0.3 + noise, features of different scales (distinct Hessian eigenvalues).
data::Dataset linear_data(std::int64_t rows) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  const float scale[3] = {1.0F, 2.0F, 0.5F}, w[3] = {0.7F, -1.2F, 2.0F};
  data::Dataset d;
  d.rows = rows;
  d.features = 3;
  d.target_width = 1;
  for (std::int64_t r = 0; r < rows; ++r) {
    float y = 0.3F + 0.1F * normal(rng);
    for (int f = 0; f < 3; ++f) {
      const float x = scale[f] * normal(rng);
      d.x.push_back(x);
      y += w[f] * x;
    }
    d.targets.push_back(y);
  }
  return d;
}

// lambda_max of the MSE's Hessian H = (2 / N) sum_r [x_r; 1][x_r; 1]^T, by power iteration.
double hessian_lambda_max(const data::Dataset& d) {
  double h[4][4] = {};
  for (std::int64_t r = 0; r < d.rows; ++r) {
    const double a[4] = {d.x[static_cast<std::size_t>(r * 3)],
                         d.x[static_cast<std::size_t>(r * 3 + 1)],
                         d.x[static_cast<std::size_t>(r * 3 + 2)], 1.0};
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) h[i][j] += 2.0 * a[i] * a[j] / static_cast<double>(d.rows);
  }
  std::vector<double> v = {1, 1, 1, 1};
  double lambda = 0;
  for (int it = 0; it < 500; ++it) {
    std::vector<double> hv(4, 0.0);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) hv[i] += h[i][j] * v[j];
    lambda = std::sqrt(hv[0] * hv[0] + hv[1] * hv[1] + hv[2] * hv[2] + hv[3] * hv[3]);
    for (int i = 0; i < 4; ++i) v[i] = hv[i] / lambda;
  }
  return lambda;
}

TEST(LrFinder, DivergesOnlyPastTheGradientDescentBound) {
  const data::Dataset d = linear_data(256);
  const double bound = 2.0 / hessian_lambda_max(d);  // ~0.25 for these scales
  nn::Sequential m(3);
  m.emplace<nn::Linear>(3, 1);
  m.build(Device::cpu(), 1);
  optim::Sgd sgd(m.parameters(), {.lr = 0.01F});
  // Full batches (plain gradient descent) and the raw losses: the bound holds step by step.
  const LrFinderResult r = find_lr(
      m, sgd, d, {.min_lr = 1e-4, .max_lr = 100, .steps = 200, .batch_size = 256, .beta = 0});
  ASSERT_TRUE(r.diverged);
  const double diverged_at = r.lrs.back();
  EXPECT_GT(diverged_at, bound);
  // Past the bound the top eigendirection's error - tiny by then - grows by |1 - lr lambda| > 1
  // per step while the lr keeps rising 7% a step: the rule fires within a small multiple of it
  // (3.3x here).
  EXPECT_LT(diverged_at, 5 * bound) << "bound " << bound;
  for (std::size_t k = 1; k < r.lrs.size(); ++k) {
    if (r.lrs[k] < bound) {
      EXPECT_LE(r.losses[k], r.losses[k - 1] * (1 + 1e-6)) << k;
    }
  }
  // The suggestion learns fast and stays below where descent turns into ascent.
  ASSERT_GE(r.suggested_index, 0);
  EXPECT_LT(r.suggested_lr, bound);
  EXPECT_GT(r.suggested_lr, bound / 100);
}

TEST(LrFinder, GeometricLrsAndFastaiSmoothing) {
  const data::Dataset d = testing_fixture::blobs(200, 3);
  nn::Sequential m = testing_fixture::model(4);
  optim::Adam adam(m.parameters(), {});
  const LrFinderResult r =
      find_lr(m, adam, d, {.min_lr = 1e-6, .max_lr = 1e-4, .steps = 20, .batch_size = 16});
  ASSERT_EQ(r.lrs.size(), 20U);  // 13 batches per epoch: the sweep starts a second epoch
  EXPECT_FALSE(r.diverged);
  for (std::size_t k = 0; k < 20; ++k)
    EXPECT_NEAR(r.lrs[k], 1e-6 * std::pow(100.0, static_cast<double>(k) / 19), 1e-18) << k;
  double avg = 0;
  for (std::size_t k = 0; k < 20; ++k) {
    avg = 0.98 * avg + 0.02 * r.losses[k];
    EXPECT_NEAR(r.smoothed[k], avg / (1 - std::pow(0.98, static_cast<double>(k + 1))), 1e-12 * avg)
        << k;
  }
  EXPECT_EQ(r.smoothed[0], r.losses[0]);
}

void check_restores(Device device) {
  const data::Dataset d = testing_fixture::blobs(200, 3);
  nn::Sequential m = testing_fixture::model(4, device);  // BatchNorm and Dropout
  optim::AdamW opt(m.parameters(), {.lr = 0.003F});
  Trainer(m, opt, testing_fixture::options(1)).fit(d);  // non-trivial state to keep
  m.eval();
  const std::vector<float> params = m.parameters().to_host(), buffers = m.buffers().to_host();
  std::vector<std::vector<float>> states;
  for (const auto& s : opt.state()) states.push_back(s.arena->to_host());
  const std::int64_t applied = opt.applied_steps();
  const float lr = opt.lr();  // where the trainer's schedule left it
  const std::uint64_t forwards = m.forward_count(), training = m.training_forward_count();
  const LrFinderResult r = find_lr(m, opt, d, {.steps = 30, .batch_size = 32, .clip_norm = 1});
  EXPECT_EQ(r.lrs.size(), r.losses.size());
  EXPECT_EQ(m.parameters().to_host(), params);
  EXPECT_EQ(m.buffers().to_host(), buffers);
  std::size_t i = 0;
  for (const auto& s : opt.state()) EXPECT_EQ(s.arena->to_host(), states[i++]) << s.name;
  EXPECT_EQ(opt.applied_steps(), applied);
  EXPECT_EQ(opt.lr(), lr);
  EXPECT_EQ(m.forward_count(), forwards);
  EXPECT_EQ(m.training_forward_count(), training);
  EXPECT_FALSE(m.training());  // the mode it was in
}

TEST(LrFinder, PutsModelAndOptimizerBack) {
  check_restores(Device::cpu());
}
TEST(LrFinderGpu, PutsModelAndOptimizerBack) {
  CUTRAIN_REQUIRE_GPU();
  check_restores(Device::cuda(0));
}

// Every step takes a full batch (fastai's training loader drops its last batch): 65 rows in
// batches of 16 left a last batch of one row, which BatchNorm cannot normalize - the sweep
// stopped at its fifth step with BatchNorm's error. Fewer rows than a batch: one batch of them.
TEST(LrFinder, EveryStepIsAFullBatch) {
  const data::Dataset d = testing_fixture::blobs(65, 3);
  nn::Sequential m = testing_fixture::model(4);  // BatchNorm1d
  optim::AdamW opt(m.parameters(), {.lr = 0.003F});
  const LrFinderResult r = find_lr(m, opt, d, {.max_lr = 1e-2, .steps = 12, .batch_size = 16});
  EXPECT_EQ(r.losses.size(), 12U);  // three passes over the data's four full batches
  const LrFinderResult small = find_lr(m, opt, d, {.max_lr = 1e-2, .steps = 3, .batch_size = 100});
  EXPECT_EQ(small.losses.size(), 3U);
}

// find_lr leaves no trace, across the random configurations of train/resume_anywhere.hpp (every
// precision, rounding, loss scaling, Dropout, BatchNorm, CNN or MLP): a run trained after a
// sweep is the run trained without one, bit for bit.
TEST(LrFinder, ATrainingRunAfterASweepIsTheRunWithoutIt) {
  int ran = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    resume_anywhere::Config c(seed);
    SCOPED_TRACE("configuration " + std::to_string(seed) + ": " + c.describe());
    const data::Dataset all = c.data();
    data::Dataset train = all, val;
    if (c.validation) std::tie(train, val) = data::split(all, 0.2, 3);
    const data::Dataset* validation = c.validation ? &val : nullptr;
    const std::int64_t b = c.options.batch_size;
    if (!c.options.drop_last && train.rows % b == 1 && c.batchnorm) continue;
    const std::int64_t batches = c.options.drop_last ? train.rows / b : (train.rows + b - 1) / b;
    const std::int64_t steps =
        (batches + c.options.accumulate_steps - 1) / c.options.accumulate_steps;
    nn::Sequential plain = c.model(7);
    auto plain_opt = c.optimizer_for(plain);
    Trainer(plain, *plain_opt, c.options_for(steps)).fit(train, validation);
    nn::Sequential swept = c.model(7);
    auto swept_opt = c.optimizer_for(swept);
    LrFinderOptions sweep{.steps = 5 + c.pick(20), .batch_size = 8 + 8 * c.pick(8)};
    if (!c.regression) sweep.label_smoothing = c.options.label_smoothing;
    find_lr(swept, *swept_opt, train, sweep);
    Trainer(swept, *swept_opt, c.options_for(steps)).fit(train, validation);
    EXPECT_EQ(swept.parameters().to_host(), plain.parameters().to_host());
    EXPECT_EQ(swept.buffers().to_host(), plain.buffers().to_host());
    ++ran;
    if (HasFailure()) return;
  }
  EXPECT_GT(ran, 50);
}

TEST(LrFinder, RefusesBadOptionsAndData) {
  const data::Dataset d = testing_fixture::blobs(60, 3);
  nn::Sequential m = testing_fixture::model(4);
  optim::Sgd sgd(m.parameters(), {});
  auto error = [&](const LrFinderOptions& o) {
    return testing::error_of([&] { find_lr(m, sgd, d, o); });
  };
  EXPECT_NE(error({.min_lr = 1, .max_lr = 1}).find("0 < min_lr < max_lr"), std::string::npos);
  EXPECT_NE(error({.min_lr = 0}).find("min_lr = 0"), std::string::npos);
  EXPECT_NE(error({.steps = 1}).find("steps = 1"), std::string::npos);
  EXPECT_NE(error({.batch_size = 0}).find("batch_size = 0"), std::string::npos);
  EXPECT_NE(error({.beta = 1}).find("beta = 1"), std::string::npos);
  EXPECT_NE(error({.diverge_factor = 1}).find("diverge_factor = 1"), std::string::npos);
  data::Dataset wide = d;
  wide.features = 4;
  wide.x.resize(60 * 4);
  EXPECT_NE(testing::error_of([&] { find_lr(m, sgd, wide); }).find("expects 8 features"),
            std::string::npos);
}

// batch_size 1 with BatchNorm: refused before the sweep, naming the layer (it stopped at the
// first step with BatchNorm's own check), and the model left as it was.
TEST(LrFinder, RefusesBatchesOfOneRowBatchNormCannotNormalize) {
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 8).emplace<nn::BatchNorm1d>(8).emplace<nn::Linear>(8, 3);
  m.build(Device::cpu(), 1);
  const std::vector<float> before = m.parameters().to_host();
  optim::Sgd sgd(m.parameters(), {});
  const std::string e =
      testing::error_of([&] { find_lr(m, sgd, testing_fixture::blobs(60, 3), {.batch_size = 1}); });
  EXPECT_NE(e.find("batch_size = 1 gives every batch 1 row, which layer 1 (BatchNorm1d)"),
            std::string::npos)
      << e;
  EXPECT_EQ(m.parameters().to_host(), before);
}

}  // namespace
}  // namespace cutrain::train
