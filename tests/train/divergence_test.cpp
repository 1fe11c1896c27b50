// Note [divergence ends the run]: a run whose loss turns non-finite stops with an error naming
// the epoch and step - it neither hangs nor trains on, and its checkpoint keeps the last good
// epoch. A NaN weight in a file is refused on load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <vector>

#include "cutrain/io/safetensors.hpp"
#include "src/train/step_results.hpp"
#include "support/errors.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(Divergence, TrailingSkippedCountsOptimizerStepsFromTheEnd) {
  const float nan = std::nanf("");
  const std::vector<float> norms = {1, nan, 2, nan, nan, nan};
  EXPECT_EQ(detail::trailing_skipped(norms, 1), 3);
  // accumulate 2: steps end at batches 2, 4, 6 (norms[1], [3], [5]): all non-finite
  EXPECT_EQ(detail::trailing_skipped(norms, 2), 3);
  // accumulate 4: steps end at batch 4 (nan) and at the epoch's last, 6 (nan)
  EXPECT_EQ(detail::trailing_skipped(norms, 4), 2);
  const std::vector<float> fine = {1, nan, 3};
  EXPECT_EQ(detail::trailing_skipped(fine, 1), 0);
  EXPECT_EQ(detail::trailing_skipped(std::vector<float>{}, 1), 0);
  // The streak that means divergence: half the epoch's steps, at most 8, at least 1.
  EXPECT_EQ(detail::diverged_streak(1), 1);
  EXPECT_EQ(detail::diverged_streak(8), 4);
  EXPECT_EQ(detail::diverged_streak(469), 8);
  // The epoch's verdict: 3 skipped of 6 steps is half (divergence); of 3 steps (accumulate 2:
  // batches 2, 4, 6) 3 is; 2 of 2 steps (accumulate 4) is; any accumulate, even one whose
  // rounded-up step count once overflowed, counts the epoch's last batch as its one step.
  EXPECT_EQ(detail::diverged_steps(norms, 1), 3);
  EXPECT_EQ(detail::diverged_steps(norms, 2), 3);
  EXPECT_EQ(detail::diverged_steps(norms, 4), 2);
  EXPECT_EQ(detail::diverged_steps(norms, std::numeric_limits<std::int64_t>::max()), 1);
  EXPECT_EQ(detail::diverged_steps(fine, 1), 0);
  EXPECT_EQ(detail::diverged_steps(std::vector<float>{}, 1), 0);
  const std::vector<float> one_bad_of_many = {1, 2, 3, 4, 5, 6, 7, nan};
  EXPECT_EQ(detail::diverged_steps(one_bad_of_many, 1), 0);  // one bad batch: 1 < 4
}

TEST(Divergence, AnExplodingLearningRateStopsTheRunWithAnError) {
  const data::Dataset train = blobs(256, 3);
  nn::Sequential m = model(4);
  optim::Sgd opt(m.parameters(), {.lr = 1e30F});
  TrainerOptions o = options(3);
  o.schedule = nullptr;
  o.clip_norm = 0;
  o.checkpoint_path = tmp("diverged.safetensors");
  std::remove(o.checkpoint_path.c_str());
  const std::string e = testing::error_of([&] { Trainer(m, opt, o).fit(train); });
  EXPECT_NE(e.find("training diverged in epoch 1"), std::string::npos) << e;
  EXPECT_NE(e.find("lower the learning rate"), std::string::npos) << e;
  // Stopped before the epoch's checkpoint: nothing diverged was saved.
  EXPECT_FALSE(std::ifstream(o.checkpoint_path).good());
}

// With dynamic loss scaling the skips first halve S (2^4 here); once S is down to 1 and the
// epoch still ends in skipped steps, the run is stopped as without scaling.
TEST(Divergence, AnExplodingLearningRateStopsAScaledRunOnceTheScaleIsSpent) {
  const data::Dataset train = blobs(256, 3);  // 8 steps an epoch
  nn::Sequential m = model(4);
  optim::Sgd opt(m.parameters(), {.lr = 1e30F});
  opt.enable_loss_scaling({.init_scale = 16.0F});
  TrainerOptions o = options(3);
  o.schedule = nullptr;
  o.clip_norm = 0;
  const std::string e = testing::error_of([&] { Trainer(m, opt, o).fit(train); });
  EXPECT_NE(e.find("training diverged in epoch 1"), std::string::npos) << e;
  EXPECT_LE(opt.loss_scale_state().scale, 1.0F);
}

TEST(Divergence, OneSkippedStepIsNotDivergence) {
  // A single batch whose logits overflow (row 0: 8 features of 3e38 under weights of 1 sum to
  // inf) is skipped by the guard, and training goes on.
  data::Dataset train = blobs(256, 3);
  std::fill(train.x.begin(), train.x.begin() + 8, 3e38F);
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 3);
  m.build(Device::cpu(), 4);
  m.parameters().from_host(std::vector<float>(m.parameters().total(), 1.0F));
  optim::Adam opt(m.parameters(), {.lr = 1e-3F});
  TrainerOptions o = options(1);
  o.shuffle = false;
  o.clip_norm = 0;
  const FitResult r = Trainer(m, opt, o).fit(train);
  ASSERT_EQ(r.history.size(), 1U);
  EXPECT_EQ(r.history[0].skipped_steps, 1);
  EXPECT_TRUE(std::isfinite(r.history[0].train_loss));
}

TEST(Divergence, ANonFiniteWeightInAFileIsRefused) {
  nn::Sequential m = model(4);
  const std::string path = tmp("nan_weight.safetensors");
  export_torch(path, m);
  io::SafetensorsFile f = io::load_safetensors(path);
  std::vector<io::TensorData> tensors;
  for (const io::TensorData& t : f.tensors) {
    if (t.dtype != io::DType::kF32) {
      tensors.push_back(t);
      continue;
    }
    std::vector<float> v = t.floats();
    if (t.name == "0.weight") v[3] = kInf;
    tensors.push_back(io::make_tensor(t.name, t.shape, v));
  }
  io::save_safetensors(path, tensors, f.metadata);
  nn::Sequential other = model(5);
  const std::string e = testing::error_of([&] { load_weights(path, other); });
  EXPECT_NE(e.find("tensor '0.weight' holds a non-finite value (inf at element 3)"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace cutrain::train
