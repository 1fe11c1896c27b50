// Inference without a trainer (include/cutrain/train/inference.hpp): the free functions give the
// bits of the Trainer's methods for the same model, batch size and loss options; they leave the
// model's mode as they found it, errors included; and misuse is refused.
#include "cutrain/train/inference.hpp"

#include <gtest/gtest.h>

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
