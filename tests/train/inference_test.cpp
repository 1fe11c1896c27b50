// Inference without a trainer (include/cutrain/train/inference.hpp): the free functions give the
// bits of the Trainer's methods for the same model, batch size and loss options; they leave the
// model's mode as they found it, errors included; test-time flips average each row's outputs
// with its mirror image's; and misuse is refused.
#include "cutrain/train/inference.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cutrain/train.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

void check_same_as_trainer(Device device) {
  const data::Dataset train = blobs(300, 31), test = blobs(130, 32);  // a short last batch
  nn::Sequential m = model(4, device);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  TrainerOptions o = options(2);
  o.label_smoothing = 0.05F;
  o.class_weights = {1.0F, 0.5F, 2.0F};
  Trainer t(m, opt, o);
  t.fit(train);
  const InferenceOptions io{.batch_size = o.batch_size,
                            .label_smoothing = o.label_smoothing,
                            .class_weights = o.class_weights};
  EXPECT_EQ(predict(m, test, io), t.predict(test));
  const EvalResult mine = evaluate(m, test, io), trainers = t.evaluate(test);
  EXPECT_EQ(mine.loss, trainers.loss);
  EXPECT_EQ(mine.accuracy, trainers.accuracy);
  EXPECT_EQ(mine.samples, test.rows);
  EXPECT_EQ(confusion_matrix(m, test, io).counts, t.confusion_matrix(test).counts);
  // The batch size changes only the order of additions: the same predictions to rounding.
  const std::vector<float> one = predict(m, test, {.batch_size = 1}), all = t.predict(test);
  ASSERT_EQ(one.size(), all.size());
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(one[i], all[i], 1e-4F) << i;
}

TEST(Inference, GivesTheTrainersBits) {
  check_same_as_trainer(Device::cpu());
}

TEST(InferenceGpu, GivesTheTrainersBits) {
  CUTRAIN_REQUIRE_GPU();
  check_same_as_trainer(Device::cuda(0));
}

// Each row's features as a {2, 1, 4} image, mirrored: (c, 0, j) from (c, 0, 3 - j).
data::Dataset mirrored(data::Dataset d) {
  for (std::int64_t r = 0; r < d.rows; ++r) {
    float* row = d.x.data() + r * d.features;
    for (int c = 0; c < 2; ++c) std::reverse(row + 4 * c, row + 4 * c + 4);
  }
  return d;
}

// Note [test-time flips]: with flips a row's outputs are the mean of the model's outputs on the
// image and on its mirror image - each predicted without flips, and averaged here in double -
// evaluate's accuracy and loss are the mean's (the cross-entropy in double), a mirrored set
// gives the same bits (the mean is symmetric), and the Trainer's methods give the same bits.
// A batch of 32 and 130 rows: the short last batch takes both passes too.
void check_test_time_flips(Device device) {
  const data::Dataset train = blobs(300, 31), test = blobs(130, 32);
  nn::Sequential m = model(4, device);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  TrainerOptions o = options(2);
  o.eval_augment = {.image = {2, 1, 4}, .flip = true};
  Trainer t(m, opt, o);
  t.fit(train);
  const InferenceOptions plain{.batch_size = o.batch_size};
  InferenceOptions flips = plain;
  flips.augment = o.eval_augment;
  const std::vector<float> a = predict(m, test, plain), b = predict(m, mirrored(test), plain);
  const std::vector<float> got = predict(m, test, flips);
  ASSERT_EQ(got.size(), a.size());
  double loss = 0;
  std::int64_t correct = 0;
  for (std::int64_t r = 0; r < test.rows; ++r) {
    double mean[3];
    for (int k = 0; k < 3; ++k) {
      const auto i = static_cast<std::size_t>(r * 3 + k);
      mean[k] = (static_cast<double>(a[i]) + static_cast<double>(b[i])) / 2;
      EXPECT_EQ(got[i], static_cast<float>(mean[k])) << r << "," << k;
    }
    const int label = test.labels[static_cast<std::size_t>(r)];
    const int best = static_cast<int>(std::max_element(mean, mean + 3) - mean);
    correct += best == label ? 1 : 0;
    const double top = mean[best];
    loss += top +
            std::log(std::exp(mean[0] - top) + std::exp(mean[1] - top) + std::exp(mean[2] - top)) -
            mean[label];
  }
  EXPECT_NE(got, a);  // the flips changed the outputs
  EXPECT_EQ(predict(m, mirrored(test), flips), got);
  const EvalResult e = evaluate(m, test, flips);
  EXPECT_EQ(e.accuracy, static_cast<double>(correct) / static_cast<double>(test.rows));
  EXPECT_NEAR(e.loss, loss / static_cast<double>(test.rows), 1e-6 * (1 + e.loss));
  EXPECT_EQ(t.predict(test), got);
  EXPECT_EQ(t.evaluate(test).loss, e.loss);
  EXPECT_EQ(t.evaluate(test).accuracy, e.accuracy);
  EXPECT_EQ(confusion_matrix(m, test, flips).counts, t.confusion_matrix(test).counts);
  // A shape that does not hold the features is refused, naming the caller.
  flips.augment.image = {1, 28, 28};
  const std::string why = testing::error_of([&] { evaluate(m, test, flips); });
  EXPECT_NE(why.find("train::evaluate: the image shape [1, 28, 28] holds 784 values but a "
                     "sample has 8 features"),
            std::string::npos)
      << why;
}

TEST(Inference, TestTimeFlipsAverageTheMirrorImagesOutputs) {
  check_test_time_flips(Device::cpu());
}

TEST(InferenceGpu, TestTimeFlipsAverageTheMirrorImagesOutputs) {
  CUTRAIN_REQUIRE_GPU();
  check_test_time_flips(Device::cuda(0));
}

TEST(Inference, RegressionMetricsAreThoseOfThePredictions) {
  data::Dataset d;
  d.rows = 5;
  d.features = 8;
  d.target_width = 3;
  for (int i = 0; i < 40; ++i) d.x.push_back(static_cast<float>(i % 7) / 7.0F);
  for (int i = 0; i < 15; ++i) d.targets.push_back(static_cast<float>(i % 4));
  nn::Sequential m = model(6);
  const std::vector<float> p = predict(m, d);
  const std::vector<TargetMetrics> want = regression_metrics(p, d.targets, 3);
  const std::vector<TargetMetrics> got = regression_metrics(m, d);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(got[k].mse, want[k].mse);
    EXPECT_EQ(got[k].r2, want[k].r2);
  }
  // evaluate()'s MSE is the mean of the per-target MSEs.
  EXPECT_NEAR(evaluate(m, d).loss, (want[0].mse + want[1].mse + want[2].mse) / 3, 1e-6);
}

TEST(Inference, LeavesTheModeAsItWasAndRefusesMisuse) {
  nn::Sequential m = model(2);
  const data::Dataset d = blobs(20, 3);
  m.train();
  predict(m, d);
  EXPECT_TRUE(m.training());
  m.eval();
  evaluate(m, d);
  EXPECT_FALSE(m.training());
  m.train();
  data::Dataset narrow = d;
  narrow.features = 4;
  narrow.x.resize(static_cast<std::size_t>(narrow.rows * 4));
  std::string e = testing::error_of([&] { evaluate(m, narrow); });
  EXPECT_NE(e.find("train::evaluate: the data has 4 features but the model expects 8"),
            std::string::npos)
      << e;
  EXPECT_TRUE(m.training());
  e = testing::error_of([&] { predict(m, d, {.batch_size = 0}); });
  EXPECT_NE(e.find("batch_size = 0 must be positive"), std::string::npos) << e;
  e = testing::error_of([&] { evaluate(m, d, {.class_weights = {1.0F, 2.0F}}); });
  EXPECT_NE(e.find("2 class weights but the logits have 3 classes"), std::string::npos) << e;
  nn::Sequential unbuilt(8);
  unbuilt.emplace<nn::Linear>(8, 3);
  e = testing::error_of([&] { predict(unbuilt, d); });
  EXPECT_NE(e.find("build() the model first"), std::string::npos) << e;
  e = testing::error_of([&] { confusion_matrix(m, data::Dataset{}); });
  EXPECT_NE(e.find("the data set is empty"), std::string::npos) << e;
}

}  // namespace
}  // namespace cutrain::train
