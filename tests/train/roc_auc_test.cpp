// One-vs-rest ROC AUC (include/cutrain/train/roc_auc.hpp): scikit-learn's documented binary
// example, a three-class case worked by hand, ties, a class without rows, and the rank formula
// against counting every (positive, negative) pair on random data.
#include "cutrain/train/roc_auc.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "support/errors.hpp"

namespace cutrain::train {
namespace {

// Binary logits whose class-1 softmax probability is s: (0, log(s / (1 - s))).
std::vector<float> binary_logits(const std::vector<double>& scores) {
  std::vector<float> out;
  for (const double s : scores) {
    out.push_back(0.0F);
    out.push_back(static_cast<float>(std::log(s / (1.0 - s))));
  }
  return out;
}

TEST(RocAuc, ScikitLearnsBinaryExample) {
  // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75: of the 4 (positive, negative)
  // pairs only (0.35, 0.4) is out of order.
  const RocAuc r = roc_auc(binary_logits({0.1, 0.4, 0.35, 0.8}), 2, std::vector{0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(r.per_class[1], 0.75);
  EXPECT_DOUBLE_EQ(r.per_class[0], 0.75);  // the mirror image
  EXPECT_DOUBLE_EQ(r.macro, 0.75);
  // Equal scores count half: every pair tied is 0.5; perfect and reversed orders are 1 and 0.
  EXPECT_DOUBLE_EQ(roc_auc(binary_logits({0.3, 0.3, 0.3, 0.3}), 2, std::vector{0, 1, 0, 1}).macro,
                   0.5);
  EXPECT_DOUBLE_EQ(roc_auc(binary_logits({0.1, 0.2, 0.8, 0.9}), 2, std::vector{0, 0, 1, 1}).macro,
                   1.0);
  EXPECT_DOUBLE_EQ(roc_auc(binary_logits({0.9, 0.8, 0.2, 0.1}), 2, std::vector{0, 0, 1, 1}).macro,
                   0.0);
}

TEST(RocAuc, ThreeClassesByHand) {
  // Softmax of (2,0,0) = (.787, .106, .106), of (0,3,0) = (.045, .909, .045).
  const std::vector<float> logits = {2, 0, 0,   // class 0
                                     0, 2, 0,   // class 1
                                     0, 0, 2,   // class 2
                                     0, 3, 0};  // class 0, scored as class 1
  const RocAuc r = roc_auc(logits, 3, std::vector{0, 1, 2, 0});
  // Class 0: positives .787 and .045 against negatives .106, .106: 2 of 4 pairs in order.
  EXPECT_DOUBLE_EQ(r.per_class[0], 0.5);
  // Class 1: .787 against .106, .106 and .909: 2 of 3.
  EXPECT_DOUBLE_EQ(r.per_class[1], 2.0 / 3.0);
  // Class 2: .787 above all three.
  EXPECT_DOUBLE_EQ(r.per_class[2], 1.0);
  EXPECT_DOUBLE_EQ(r.macro, (0.5 + 2.0 / 3.0 + 1.0) / 3.0);
  // A class without rows has no AUC and leaves the average.
  const RocAuc absent = roc_auc(logits, 3, std::vector{0, 1, 1, 0});
  EXPECT_TRUE(std::isnan(absent.per_class[2]));
  EXPECT_DOUBLE_EQ(absent.macro, (absent.per_class[0] + absent.per_class[1]) / 2.0);
}

TEST(RocAuc, RanksAgreeWithCountingEveryPair) {
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0F, 1.0F);
  const int classes = 4, rows = 300;
  std::vector<float> logits;
  std::vector<std::int32_t> labels;
  for (int r = 0; r < rows; ++r) {
    const int label = r % classes;
    labels.push_back(label);
    for (int c = 0; c < classes; ++c)  // coarse values: many ties
      logits.push_back(std::round(4.0F * (noise(rng) + (c == label ? 1.0F : 0.0F))) / 4.0F);
  }
  const RocAuc r = roc_auc(logits, classes, labels);
  for (int c = 0; c < classes; ++c) {
    auto p = [&](int row) {  // softmax probability of class c, in double, max-shifted as
      const float* x = &logits[static_cast<std::size_t>(row * classes)];  // documented
      double m = x[0], s = 0;
      for (int k = 1; k < classes; ++k) m = std::max(m, static_cast<double>(x[k]));
      for (int k = 0; k < classes; ++k) s += std::exp(static_cast<double>(x[k]) - m);
      return std::exp(static_cast<double>(x[c]) - m) / s;
    };
    double wins = 0, pairs = 0;
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < rows; ++j)
        if (labels[i] == c && labels[j] != c) {
          pairs += 1;
          wins += p(i) > p(j) ? 1.0 : p(i) == p(j) ? 0.5 : 0.0;
        }
    EXPECT_NEAR(r.per_class[c], wins / pairs, 1e-12) << "class " << c;
  }
}

TEST(RocAuc, RefusesBadInput) {
  auto error = [](const std::vector<float>& o, int classes, const std::vector<std::int32_t>& l) {
    return testing::error_of([&] { roc_auc(o, classes, l); });
  };
  EXPECT_NE(error({1, 2, 3}, 2, {0, 1}).find("3 outputs for 2 labels x 2 classes"),
            std::string::npos);
  EXPECT_NE(error({1, 2, 3, 4}, 2, {0, 2}).find("label 2 of row 1 is outside [0, 2)"),
            std::string::npos);
  EXPECT_NE(error({1, NAN, 3, 4}, 2, {0, 1}).find("row 0 has a non-finite output"),
            std::string::npos);
  // Infinite logits (a diverged model) give NaN probabilities, whose tie grouping never advanced:
  // refused, not a hang.
  EXPECT_NE(error({INFINITY, 1, INFINITY, 2}, 2, {0, 1}).find("row 0 has a non-finite output"),
            std::string::npos);
  EXPECT_NE(error({1, 2, 3, -INFINITY}, 2, {0, 1}).find("row 1 has a non-finite output"),
            std::string::npos);
  EXPECT_NE(error({1, 2}, 1, {0, 0}).find("needs at least 2"), std::string::npos);
}

}  // namespace
}  // namespace cutrain::train
