// Confusion matrices: counts, recall, precision, F1 and macro F1 against the textbook formulas on
// a hand-counted example; the predicted-class rule (ties, NaN); the trainer's matrix against its
// own evaluate() accuracy.
#include "cutrain/train/confusion.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/errors.hpp"
#include "trainer_fixture.hpp"

namespace cutrain::train {
namespace {

// One-hot-ish logits predicting `p` among `classes`.
void push_row(std::vector<float>& out, std::int32_t p, std::int32_t classes) {
  for (std::int32_t c = 0; c < classes; ++c) out.push_back(c == p ? 2.0F : -1.0F);
}

TEST(Confusion, HandCountedExample) {
  // (true, predicted): class 3 is neither a label nor a prediction.
  const std::vector<std::pair<int, int>> pairs = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 2},
                                                  {2, 2}, {2, 2}, {2, 2}, {2, 0}, {1, 0}};
  std::vector<float> logits;
  std::vector<std::int32_t> labels;
  for (const auto& [t, p] : pairs) {
    push_row(logits, p, 4);
    labels.push_back(t);
  }
  const ConfusionMatrix m = confusion_matrix(logits, 4, labels);
  // Rows: true class; columns: predicted.
  const std::vector<std::int64_t> want = {2, 1, 0, 0,  //
                                          1, 1, 1, 0,  //
                                          1, 0, 3, 0,  //
                                          0, 0, 0, 0};
  EXPECT_EQ(m.counts, want);
  EXPECT_EQ(m.total(), 10);
  EXPECT_EQ(m.rows_of(2), 4);
  EXPECT_DOUBLE_EQ(m.accuracy(), 6.0 / 10.0);
  const std::vector<double> recall = m.recall(), precision = m.precision(), f1 = m.f1();
  EXPECT_DOUBLE_EQ(recall[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(recall[1], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(recall[2], 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(recall[3], 0.0);  // nothing to count: zero_division = 0
  EXPECT_DOUBLE_EQ(precision[0], 2.0 / 4.0);
  EXPECT_DOUBLE_EQ(precision[1], 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(precision[2], 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(precision[3], 0.0);
  // F1 = 2 p r / (p + r): 4/7, 2/5, 3/4; the macro mean leaves out class 3 (absent).
  EXPECT_NEAR(f1[0], 4.0 / 7.0, 1e-15);
  EXPECT_NEAR(f1[1], 2.0 / 5.0, 1e-15);
  EXPECT_NEAR(f1[2], 3.0 / 4.0, 1e-15);
  EXPECT_DOUBLE_EQ(f1[3], 0.0);
  EXPECT_NEAR(m.macro_f1(), (4.0 / 7.0 + 2.0 / 5.0 + 3.0 / 4.0) / 3.0, 1e-15);
}

TEST(Confusion, PredictedClassTiesAndNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(predicted_class(std::vector<float>{0.5F, 2.0F, 2.0F}), 1);  // first of the largest
  EXPECT_EQ(predicted_class(std::vector<float>{3.0F}), 0);
  EXPECT_EQ(predicted_class(std::vector<float>{0.0F, nan, 1.0F}), 2);  // NaN never chosen ...
  EXPECT_EQ(predicted_class(std::vector<float>{nan, 5.0F, 1.0F}), 0);  // ... over class 0's
  EXPECT_NE(testing::error_of([] { predicted_class({}); }).find("no logits"), std::string::npos);
}

TEST(Confusion, RefusesInconsistentInput) {
  const std::vector<float> logits(6, 0.0F);
  EXPECT_NE(testing::error_of([&] {
              confusion_matrix(logits, 3, std::vector<int>{0, 1, 2});
            }).find("are not 3 rows x 3 classes"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              confusion_matrix(logits, 3, std::vector<int>{0, 3});
            }).find("label 3 of row 1 is outside [0, 3)"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { ConfusionMatrix{}.at(0, 0); }).find("outside"),
            std::string::npos);
}

// The trainer's matrix counts what evaluate() counts: its trace over its total is the accuracy.
TEST(Confusion, TrainerMatrixMatchesEvaluate) {
  using namespace testing_fixture;
  nn::Sequential m = model(3);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  Trainer trainer(m, opt, options(2));
  data::Dataset train = blobs(300, 1);
  data::Dataset test = blobs(151, 2);
  for (std::size_t r = 0; r < 9; ++r) test.labels[r] = (test.labels[r] + 1) % 3;  // some wrong
  trainer.fit(train);
  const ConfusionMatrix c = trainer.confusion_matrix(test);
  EXPECT_EQ(c.classes, 3);
  EXPECT_EQ(c.total(), 151);
  for (std::int32_t k = 0; k < 3; ++k)
    EXPECT_EQ(c.rows_of(k), k == 0 ? 51 : 50);  // relabelled 3 each
  EXPECT_EQ(c.accuracy(), trainer.evaluate(test).accuracy);
  EXPECT_LT(c.accuracy(), 1.0);
  // Each row's predicted class as predict()'s logits give it.
  const std::vector<float> logits = trainer.predict(test);
  std::int64_t predicted_as_0 = 0;
  for (std::size_t r = 0; r < 151; ++r)
    predicted_as_0 += predicted_class({logits.data() + 3 * r, 3}) == 0 ? 1 : 0;
  EXPECT_EQ(c.at(0, 0) + c.at(1, 0) + c.at(2, 0), predicted_as_0);
  EXPECT_EQ(c.predicted_as(0), predicted_as_0);

  data::Dataset regression = test;
  regression.labels.clear();
  regression.classes = 0;
  regression.targets.assign(151 * 3, 0.0F);
  regression.target_width = 3;
  EXPECT_NE(testing::error_of([&] {
              trainer.confusion_matrix(regression);
            }).find("regression targets, not class labels"),
            std::string::npos);
}

}  // namespace
}  // namespace cutrain::train
