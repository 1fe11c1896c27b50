// Class weights in the cross-entropy at the trainer's level: evaluate() is the weighted mean
// over the whole set (PyTorch's CrossEntropyLoss(weight=...) with the set as one batch, computed
// here in double from predict()'s logits), "balanced" weights are scikit-learn's and lift a rare
// class's recall, and every inconsistent use is refused. The loss's own values and gradients
// against PyTorch: tests/nn/layers_test.cpp (Losses), its GPU launches: tests/nn/loss_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/data.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

void expect_error(const std::function<void()>& f, const std::string& what) {
  const std::string e = testing::error_of(f);
  EXPECT_NE(e.find(what), std::string::npos) << e;
}

// sum_i w_{t_i} (lse_i - x_{i t_i}) / sum_i w_{t_i}, in double (no smoothing).
double weighted_cross_entropy(const std::vector<float>& logits, const data::Dataset& d,
                              const std::vector<float>& w) {
  const auto c = static_cast<std::size_t>(d.classes);
  double num = 0, den = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(d.rows); ++r) {
    const float* x = logits.data() + r * c;
    double m = x[0], s = 0;
    for (std::size_t k = 1; k < c; ++k) m = std::max(m, static_cast<double>(x[k]));
    for (std::size_t k = 0; k < c; ++k) s += std::exp(x[k] - m);
    const auto t = static_cast<std::size_t>(d.labels[r]);
    num += w[t] * (m + std::log(s) - x[t]);
    den += w[t];
  }
  return num / den;
}

void check_weighted_evaluation(Device device) {
  const data::Dataset train = blobs(300, 3), test = blobs(250, 4);  // 250: a short last batch
  nn::Sequential m = model(5, device);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  TrainerOptions o = options(1);
  o.class_weights = {0.5F, 3.0F, 1.25F};
  Trainer t(m, opt, o);
  t.fit(train);
  const EvalResult weighted = t.evaluate(test);
  const std::vector<float> logits = t.predict(test);
  EXPECT_NEAR(weighted.loss, weighted_cross_entropy(logits, test, o.class_weights),
              1e-5 * weighted.loss);
  // The unweighted loss of the same model differs: the weights are used, not ignored.
  const double plain = weighted_cross_entropy(logits, test, {1.0F, 1.0F, 1.0F});
  EXPECT_GT(std::abs(weighted.loss - plain), 1e-3 * plain);
}

TEST(ClassWeights, EvaluateIsTheWeightedMeanOverTheWholeSet) {
  check_weighted_evaluation(Device::cpu());
}

// A class of weight 0 in batches of one row: its batches weigh 0 (mean 0/0) and count for
// nothing - the set's loss is the weighted mean over the others, not NaN. Weights whose batch
// total would overflow a float are refused.
TEST(ClassWeights, ZeroWeightBatchesCountForNothing) {
  const data::Dataset test = blobs(40, 4);
  nn::Sequential m = model(5, Device::cpu());
  const std::vector<float> w = {0.0F, 1.0F, 2.0F};
  const EvalResult r = evaluate(m, test, {.batch_size = 1, .class_weights = w});
  const std::vector<float> logits = predict(m, test);
  ASSERT_TRUE(std::isfinite(r.loss));
  EXPECT_NEAR(r.loss, weighted_cross_entropy(logits, test, w), 1e-5 * r.loss);
  expect_error([] { nn::SoftmaxCrossEntropy(0.0F, {1e38F, 1e38F}); }, "at most 1e20");
}

TEST(ClassWeightsGpu, EvaluateIsTheWeightedMeanOverTheWholeSet) {
  CUTRAIN_REQUIRE_GPU();
  check_weighted_evaluation(Device::cuda(0));
}

// Unit weights are the unweighted loss (D = rows): training and evaluation agree to rounding.
TEST(ClassWeights, UnitWeightsTrainAsNone) {
  const data::Dataset train = blobs(240, 6), test = blobs(90, 7);
  auto run = [&](std::vector<float> w) {
    nn::Sequential m = model(8);
    optim::Adam opt(m.parameters(), {.lr = 0.01F});
    TrainerOptions o = options(2);
    o.class_weights = std::move(w);
    Trainer t(m, opt, o);
    const FitResult r = t.fit(train);
    return std::pair{r.history.back().train_loss, t.evaluate(test).loss};
  };
  const auto [train_none, test_none] = run({});
  const auto [train_unit, test_unit] = run({1.0F, 1.0F, 1.0F});
  EXPECT_NEAR(train_unit, train_none, 1e-4 * train_none);
  EXPECT_NEAR(test_unit, test_none, 1e-4 * test_none);
}

TEST(ClassWeights, BalancedIsScikitLearns) {
  data::Dataset d;
  d.rows = 6;
  d.features = 1;
  d.x.assign(6, 0.0F);
  d.labels = {0, 0, 0, 2, 1, 0};  // counts 4, 1, 1
  d.classes = 3;
  // n_samples / (n_classes * bincount(y)): 6 / 12, 6 / 3, 6 / 3.
  EXPECT_EQ(data::balanced_class_weights(d), (std::vector<float>{0.5F, 2.0F, 2.0F}));
  d.classes = 4;  // class 3 has no sample: no finite weight balances it
  d.class_names = {"a", "b", "c", "d"};
  expect_error([&] { data::balanced_class_weights(d); },
               "class 3 (d) has no sample in the data set");
  d.labels.clear();
  expect_error([&] { data::balanced_class_weights(d); }, "has no class labels");
}

// 90% of class 0: unweighted, the rare classes' boundary is pushed toward them; balanced weights
// count every class alike and recover their recall (scikit-learn's class_weight="balanced").
TEST(ClassWeights, BalancedWeightsLiftARareClassesRecall) {
  const data::Dataset full = testing::blobs(3000, 8, 3, 1.0F, 1.0F, 21),
                      test = testing::blobs(900, 8, 3, 1.0F, 1.0F, 22);
  std::vector<std::int64_t> keep;  // every class-0 row, 1 in 18 of the others
  for (std::int64_t r = 0; r < full.rows; ++r)
    if (full.labels[static_cast<std::size_t>(r)] == 0 || r % 18 < 3) keep.push_back(r);
  const data::Dataset train = full.subset(keep);
  const std::vector<float> balanced = data::balanced_class_weights(train);
  EXPECT_GT(balanced[1], 4.0F * balanced[0]);
  auto rare_recall = [&](std::vector<float> w) {
    nn::Sequential m(8);
    m.emplace<nn::Linear>(8, 3).build(Device::cpu(), 3);
    optim::Adam opt(m.parameters(), {.lr = 0.02F});
    TrainerOptions o;
    o.epochs = 15;
    o.batch_size = 64;
    o.progress = false;
    o.class_weights = std::move(w);
    Trainer t(m, opt, o);
    t.fit(train);
    const ConfusionMatrix cm = t.confusion_matrix(test);
    const std::vector<double> recall = cm.recall();
    return (recall[1] + recall[2]) / 2;
  };
  const double plain = rare_recall({}), weighted = rare_recall(balanced);
  std::printf("rare classes' recall: %.3f plain, %.3f balanced\n", plain, weighted);
  EXPECT_GT(weighted, plain + 0.1) << "plain " << plain << ", balanced " << weighted;
}

// A checkpoint records the loss it trained with: a resume with other class weights or label
// smoothing would change the objective mid-run, and is refused; the same options continue.
TEST(ClassWeights, ResumeWithOtherLossOptionsIsRefused) {
  const data::Dataset train = blobs(120, 13);
  const std::string path = tmp("loss_options.safetensors");
  TrainerOptions o = options(1);
  o.checkpoint_path = path;
  o.class_weights = {1.0F, 2.0F, 0.5F};
  o.label_smoothing = 0.1F;
  {
    nn::Sequential m = model(2);
    optim::Adam opt(m.parameters(), {});
    Trainer(m, opt, o).fit(train);
  }
  auto resume_with = [&](std::vector<float> w, float smoothing) {
    nn::Sequential m = model(2);
    optim::Adam opt(m.parameters(), {});
    TrainerOptions again = o;
    again.epochs = 2;
    again.checkpoint_path.clear();
    again.class_weights = std::move(w);
    again.label_smoothing = smoothing;
    Trainer t(m, opt, again);
    t.resume(path);
    return testing::error_of([&] { t.fit(train); });
  };
  auto expect_has = [](const std::string& e, const std::string& what) {
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  expect_has(resume_with({1.0F, 2.0F, 0.75F}, 0.1F),
             "trained with cross_entropy label_smoothing=0.100000001 class_weights=[1,2,0.5] and "
             "this one with cross_entropy label_smoothing=0.100000001 class_weights=[1,2,0.75]");
  expect_has(resume_with({}, 0.1F), "give the same loss options");
  expect_has(resume_with({1.0F, 2.0F, 0.5F}, 0.0F), "label_smoothing=0 class_weights");
  EXPECT_EQ(resume_with({1.0F, 2.0F, 0.5F}, 0.1F), "(no error)");
}

TEST(ClassWeights, InconsistentUsesAreRefused) {
  nn::Sequential m = model(1);
  optim::Adam opt(m.parameters(), {});
  TrainerOptions o = options(1);
  o.class_weights = {1.0F, 2.0F};
  expect_error([&] { Trainer(m, opt, o); }, "2 class weights for a model with 3 outputs");
  o.class_weights = {1.0F, -2.0F, 1.0F};
  expect_error([&] { Trainer(m, opt, o); },
               "the weight of class 1 is -2; class weights must be finite and >= 0");
  o.class_weights = {0.0F, 0.0F, 0.0F};
  expect_error([&] { Trainer(m, opt, o); }, "every class weight is 0");
  o.class_weights = {1.0F, NAN, 1.0F};
  expect_error([&] { Trainer(m, opt, o); }, "the weight of class 1 is nan");
  // Regression targets have no classes to weigh.
  data::Dataset reg;
  reg.rows = 4;
  reg.features = 8;
  reg.x.assign(32, 0.5F);
  reg.targets.assign(12, 1.0F);
  reg.target_width = 3;
  o.class_weights = {1.0F, 2.0F, 1.0F};
  Trainer t(m, opt, o);
  expect_error([&] { t.fit(reg); }, "class_weights apply to labels");
}

}  // namespace
}  // namespace cutrain::train
