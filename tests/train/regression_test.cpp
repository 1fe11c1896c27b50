// The trainer on regression data (float targets): it trains with mean squared error, recovers a
// known linear map, and evaluate() reports the MSE a plain double-precision loop computes from
// the model's own weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cutrain/data.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::train {
namespace {

constexpr std::int64_t kIn = 6, kOut = 2;

// y = A x + b for x ~ N(0, 1) (fixed-seed std::mt19937, independent of the code under test),
// A[o][i] = (o + 1) * (i - 2.5) / 4 and b = (0.5, -1): a map a Linear(6, 2) can represent exactly.
float a_true(std::int64_t o, std::int64_t i) {
  return static_cast<float>(o + 1) * (static_cast<float>(i) - 2.5F) / 4.0F;
}
float b_true(std::int64_t o) {
  return o == 0 ? 0.5F : -1.0F;
}

data::Dataset linear_data(std::int64_t rows, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  data::Dataset d;
  d.rows = rows;
  d.features = kIn;
  d.target_width = kOut;
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<float> x(kIn);
    for (float& v : x) v = normal(rng);
    d.x.insert(d.x.end(), x.begin(), x.end());
    for (std::int64_t o = 0; o < kOut; ++o) {
      double y = b_true(o);
      for (std::int64_t i = 0; i < kIn; ++i) y += static_cast<double>(a_true(o, i)) * x[i];
      d.targets.push_back(static_cast<float>(y));
    }
  }
  return d;
}

nn::Sequential linear_model(Device device) {
  nn::Sequential m(kIn);
  m.emplace<nn::Linear>(kIn, kOut);
  m.build(device, 3);
  return m;
}

TrainerOptions quiet(std::int64_t epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.seed = 5;
  o.progress = false;
  return o;
}

// The named tensor's values, from the parameter arena.
std::vector<float> tensor(nn::Sequential& m, const std::string& name) {
  const std::vector<float> all = m.parameters().to_host();
  for (const TensorSpec& t : m.parameters().layout().tensors())
    if (t.name == name)
      return {all.begin() + static_cast<std::ptrdiff_t>(t.offset),
              all.begin() + static_cast<std::ptrdiff_t>(t.offset + t.numel)};
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

// W x + b for every row, [rows, kOut] row-major, in double, from the model's weights.
std::vector<double> host_outputs(nn::Sequential& m, const data::Dataset& d) {
  const std::vector<float> w = tensor(m, "layers.0.weight"), b = tensor(m, "layers.0.bias");
  std::vector<double> y(static_cast<std::size_t>(d.rows * kOut));
  for (std::int64_t r = 0; r < d.rows; ++r)
    for (std::int64_t o = 0; o < kOut; ++o) {
      double v = b[static_cast<std::size_t>(o)];
      for (std::int64_t i = 0; i < kIn; ++i)
        v += static_cast<double>(w[static_cast<std::size_t>(o * kIn + i)]) *
             d.x[static_cast<std::size_t>(r * kIn + i)];
      y[static_cast<std::size_t>(r * kOut + o)] = v;
    }
  return y;
}

// mean over rows and outputs of (W x + b - t)^2.
double host_mse(nn::Sequential& m, const data::Dataset& d) {
  const std::vector<double> y = host_outputs(m, d);
  double sum = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double e = y[i] - d.targets[i];
    sum += e * e;
  }
  return sum / static_cast<double>(d.rows * kOut);
}

void check_learns_the_map(Device device) {
  const data::Dataset train = linear_data(512, 1), val = linear_data(128, 2);
  nn::Sequential m = linear_model(device);
  optim::Adam opt(m.parameters(), {.lr = 0.05F});
  TrainerOptions o = quiet(40);
  o.schedule = std::make_shared<optim::CosineLr>(0.05, 40 * 16);
  Trainer t(m, opt, o);
  const EvalResult before = t.evaluate(val);
  EXPECT_NEAR(before.loss, host_mse(m, val), 1e-5 * host_mse(m, val));
  const FitResult r = t.fit(train, &val);
  ASSERT_EQ(r.history.size(), 40U);
  EXPECT_TRUE(std::isnan(r.history.back().val_accuracy));  // no accuracy for regression
  EXPECT_LT(r.history.back().val_loss, 1e-4) << "started at " << before.loss;
  const std::vector<float> w = tensor(m, "layers.0.weight"), b = tensor(m, "layers.0.bias");
  for (std::int64_t o2 = 0; o2 < kOut; ++o2) {
    EXPECT_NEAR(b[static_cast<std::size_t>(o2)], b_true(o2), 1e-2) << "bias " << o2;
    for (std::int64_t i = 0; i < kIn; ++i)
      EXPECT_NEAR(w[static_cast<std::size_t>(o2 * kIn + i)], a_true(o2, i), 1e-2)
          << "weight " << o2 << "," << i;
  }
  const EvalResult after = t.evaluate(val);
  EXPECT_TRUE(std::isnan(after.accuracy));
  EXPECT_EQ(after.samples, 128);
  EXPECT_NEAR(after.loss, host_mse(m, val), 1e-3 * host_mse(m, val) + 1e-9);
}

TEST(TrainerRegression, RecoversALinearMapWithMeanSquaredError) {
  check_learns_the_map(Device::cpu());
}

TEST(TrainerRegressionGpu, RecoversALinearMapWithMeanSquaredError) {
  CUTRAIN_REQUIRE_GPU();
  check_learns_the_map(Device::cuda(0));
}

// With lr 0 nothing moves, so the epoch's train loss - the mean of the steps' recorded MSEs,
// equal batches of 32 - is the MSE of the whole set in the model's fixed weights.
TEST(TrainerRegression, TrainLossIsTheMeanSquaredErrorOfTheBatches) {
  const data::Dataset train = linear_data(256, 4);
  nn::Sequential m = linear_model(Device::cpu());
  optim::Sgd opt(m.parameters(), {.lr = 0.0F});
  Trainer t(m, opt, quiet(1));
  const double expected = host_mse(m, train);
  const FitResult r = t.fit(train);
  ASSERT_EQ(r.history.size(), 1U);
  EXPECT_NEAR(r.history[0].train_loss, expected, 1e-5 * expected);
  EXPECT_TRUE(std::isnan(r.history[0].val_loss));
}

// log_every reads the batch's loss for the progress line: the MSE here (it used to read the
// cross-entropy, never computed on regression data, and throw); reading changes nothing.
TEST(TrainerRegression, LogEveryReadsTheMseAndChangesNothing) {
  const data::Dataset train = linear_data(200, 9);
  auto run = [&](std::int64_t log_every) {
    nn::Sequential m = linear_model(Device::cpu());
    optim::Sgd opt(m.parameters(), {.lr = 0.05F});
    TrainerOptions o = quiet(2);
    o.log_every = log_every;
    Trainer t(m, opt, o);
    return t.fit(train).history.back().train_loss;
  };
  EXPECT_EQ(run(1), run(0));
}

// predict() returns W x + b for every row, in order, from the model's weights (a double loop
// computes the reference); a copy of the data without targets predicts the same bits, and the
// model's mode and training position are left as they were.
TEST(TrainerRegression, PredictReturnsTheModelsOutputsInOrder) {
  const data::Dataset train = linear_data(200, 9), d = linear_data(77, 10);
  nn::Sequential m = linear_model(Device::cpu());
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  Trainer t(m, opt, quiet(2));
  t.fit(train);
  const std::uint64_t trained = m.training_forward_count();
  const std::vector<float> p = t.predict(d);
  ASSERT_EQ(p.size(), static_cast<std::size_t>(77 * kOut));
  const std::vector<double> y = host_outputs(m, d);
  for (std::size_t i = 0; i < y.size(); ++i)
    EXPECT_NEAR(p[i], y[i], 1e-5 * (1 + std::abs(y[i])))
        << "row " << i / kOut << " output " << i % kOut;
  data::Dataset unlabelled;
  unlabelled.rows = d.rows;
  unlabelled.features = d.features;
  unlabelled.x = d.x;
  EXPECT_EQ(t.predict(unlabelled), p);
  EXPECT_TRUE(m.training());
  EXPECT_EQ(m.training_forward_count(), trained);
  data::Dataset narrow = unlabelled;
  narrow.features = 3;
  narrow.x.resize(static_cast<std::size_t>(narrow.rows * 3));
  EXPECT_NE(
      testing::error_of([&] { t.predict(narrow); }).find("3 features but the model expects 6"),
      std::string::npos);
}

TEST(TrainerRegression, RefusesMismatchedDataAndLabelSmoothing) {
  nn::Sequential m = linear_model(Device::cpu());
  optim::Sgd opt(m.parameters(), {.lr = 0.1F});
  data::Dataset wide = linear_data(40, 6);
  wide.target_width = 1;  // 80 targets as 80 rows of 1: consistent, but not the model's width
  wide.rows = 40;
  wide.targets.resize(40);
  Trainer t(m, opt, quiet(1));
  std::string e = testing::error_of([&] { t.fit(wide); });
  EXPECT_NE(e.find("targets: 1 per row"), std::string::npos) << e;
  EXPECT_NE(e.find("model's 2 outputs"), std::string::npos) << e;

  data::Dataset labelled = linear_data(40, 7);
  labelled.targets.clear();
  labelled.target_width = 0;
  labelled.classes = 2;
  labelled.labels.assign(40, 1);
  const data::Dataset train = linear_data(40, 8);
  e = testing::error_of([&] { t.fit(train, &labelled); });
  EXPECT_NE(e.find("training data has targets but the validation data labels"), std::string::npos)
      << e;

  TrainerOptions smoothing = quiet(1);
  smoothing.label_smoothing = 0.1F;
  Trainer ts(m, opt, smoothing);
  e = testing::error_of([&] { ts.fit(train); });
  EXPECT_NE(e.find("label_smoothing = 0.1 applies to labels"), std::string::npos) << e;

  TrainerOptions accuracy = quiet(1);
  accuracy.monitor = TrainerOptions::Monitor::kValAccuracy;
  accuracy.patience = 2;
  Trainer ta(m, opt, accuracy);
  e = testing::error_of([&] { ta.fit(train, &train); });
  EXPECT_NE(e.find("monitor = val_accuracy, but this data set has regression targets"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace cutrain::train
