// Per-target regression metrics against a hand computation, the constant-target convention of
// scikit-learn's r2_score, and the trainer's figures against its own evaluate().
#include "cutrain/train/regression_metrics.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "support/errors.hpp"
#include "trainer_fixture.hpp"

namespace cutrain::train {
namespace {

TEST(RegressionMetrics, HandComputedTwoTargets) {
  // Rows (prediction | truth) for targets a, b:  a: (1|0) (2|2) (6|4) ;  b: (5|5) (5|5) (4|5).
  const std::vector<float> out = {1, 5, 2, 5, 6, 4};
  const std::vector<float> truth = {0, 5, 2, 5, 4, 5};
  const std::vector<TargetMetrics> m = regression_metrics(out, truth, 2);
  ASSERT_EQ(m.size(), 2U);
  // a: errors 1, 0, 2 -> MSE 5/3, MAE 1; truths 0, 2, 4 (mean 2): SST 8 -> R^2 1 - 5/8.
  EXPECT_DOUBLE_EQ(m[0].mse, 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(m[0].mae, 1.0);
  EXPECT_DOUBLE_EQ(m[0].r2, 1.0 - 5.0 / 8.0);
  // b: a constant truth, predicted imperfectly: R^2 0 (r2_score's force_finite); MSE 1/3.
  EXPECT_DOUBLE_EQ(m[1].mse, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m[1].mae, 1.0 / 3.0);
  EXPECT_EQ(m[1].r2, 0.0);
  const std::vector<float> same = {3, 3};
  EXPECT_EQ(regression_metrics(same, same, 1)[0].r2, 1.0);  // ... and perfectly: 1
  EXPECT_NE(testing::error_of([&] { regression_metrics(out, same, 2); }).find("not the same"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { regression_metrics(out, truth, 4); }).find("rows x 4"),
            std::string::npos);
}

TEST(RegressionMetrics, TrainerFiguresMatchEvaluate) {
  // y = (x0 - x1, 2 x2): two targets of an 8-feature blob set.
  data::Dataset d = testing_fixture::blobs(160, 4);
  d.labels.clear();
  d.classes = 0;
  d.target_width = 2;
  for (std::int64_t r = 0; r < d.rows; ++r) {
    const float* x = d.x.data() + r * 8;
    d.targets.push_back(x[0] - x[1]);
    d.targets.push_back(2 * x[2]);
  }
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 16).emplace<nn::Activation>(nn::Activation::Kind::kTanh);
  m.emplace<nn::Linear>(16, 2);
  m.build(Device::cpu(), 3);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  TrainerOptions o = testing_fixture::options(3);
  o.clip_norm = 0;
  Trainer t(m, opt, o);
  t.fit(d);
  const std::vector<TargetMetrics> per = t.regression_metrics(d);
  ASSERT_EQ(per.size(), 2U);
  // evaluate()'s MSE is the mean over every element: the targets' MSEs averaged.
  EXPECT_NEAR((per[0].mse + per[1].mse) / 2, t.evaluate(d).loss, 1e-6 * t.evaluate(d).loss);
  EXPECT_GT(per[0].r2, 0.0);
  EXPECT_NE(testing::error_of([&] {
              t.regression_metrics(testing::blobs(30, 8, 2, 2.0F, 0.6F, 1));
            }).find("class labels"),
            std::string::npos);
}

}  // namespace
}  // namespace cutrain::train
