// The Trainer with dynamic loss scaling (Note [dynamic loss scale]): a run whose gradients never
// overflow is the unscaled run bit for bit; overflowing ones are skipped and halve the scale;
// checkpoints carry the scaler's state and resume exactly; a mismatched resume is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "cutrain/error.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

FitResult fit(nn::Sequential& m, optim::Optimizer& opt, const data::Dataset& d,
              std::int64_t epochs) {
  return Trainer(m, opt, options(epochs)).fit(d);
}

// BatchNorm, Dropout, clipping and a cosine schedule over 30 steps, S growing from 2^10 every 4
// clean steps: the same weights, statistics, losses and norms as without scaling.
void check_identical(Device device) {
  const data::Dataset train = blobs(300, 4);
  nn::Sequential plain = model(7, device), scaled = model(7, device);
  optim::AdamW opt1(plain.parameters(), optim::AdamW::defaults());
  optim::AdamW opt2(scaled.parameters(), optim::AdamW::defaults());
  opt2.enable_loss_scaling({.init_scale = 1024.0F, .growth_interval = 4});
  const FitResult a = fit(plain, opt1, train, 3), b = fit(scaled, opt2, train, 3);
  EXPECT_EQ(scaled.parameters().to_host(), plain.parameters().to_host());
  EXPECT_EQ(scaled.buffers().to_host(), plain.buffers().to_host());
  ASSERT_EQ(a.history.size(), 3U);
  ASSERT_EQ(b.history.size(), 3U);
  for (std::size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(b.history[e].train_loss, a.history[e].train_loss) << "epoch " << e;
    EXPECT_EQ(b.history[e].grad_norm, a.history[e].grad_norm) << "epoch " << e;
    EXPECT_EQ(b.history[e].skipped_steps, 0);
    EXPECT_EQ(a.history[e].loss_scale, 1.0);
    // 10 clean steps an epoch: S doubles at steps 4, 8, 12, ...
    EXPECT_EQ(b.history[e].loss_scale, std::ldexp(1024.0, static_cast<int>((e + 1) * 10 / 4)));
  }
  EXPECT_EQ(opt2.applied_steps(), 30);
}

TEST(LossScaling, ARunWithoutOverflowIsTheUnscaledRun) {
  check_identical(Device::cpu());
}
TEST(LossScalingGpu, ARunWithoutOverflowIsTheUnscaledRun) {
  CUTRAIN_REQUIRE_GPU();
  check_identical(Device::cuda(0));
}

// Inputs of size ~1000 (no BatchNorm to absorb them) and S = 2^127: the first layer's scaled
// gradient overflows, the step is skipped and S halves until it fits; with no growth in the run,
// S = 2^(127 - skipped).
TEST(LossScaling, OverflowingStepsAreSkippedUntilTheScaleFits) {
  data::Dataset train = blobs(300, 4);
  for (float& x : train.x) x *= 1000.0F;
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 32).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  m.emplace<nn::Linear>(32, 3);
  m.build(Device::cpu(), 7);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  opt.enable_loss_scaling({.init_scale = std::ldexp(1.0F, 127), .growth_interval = 1000});
  const FitResult r = fit(m, opt, train, 2);
  std::int64_t skipped = 0;
  for (const EpochMetrics& e : r.history) skipped += e.skipped_steps;
  EXPECT_GE(skipped, 1);
  EXPECT_EQ(skipped, opt.skipped_steps());
  EXPECT_LT(skipped, 20);  // training went on
  EXPECT_EQ(r.history.back().loss_scale, std::ldexp(1.0, 127 - static_cast<int>(skipped)));
  for (const float p : m.parameters().to_host()) ASSERT_TRUE(std::isfinite(p));
}

// 1 epoch, a checkpoint mid-growth (10 steps, interval 4: count 2), a new optimizer and resume
// for 2 more == 3 straight: the weights and the scaler's state.
TEST(LossScaling, ResumeRestoresTheScaler) {
  const data::Dataset train = blobs(300, 4);
  const optim::LossScaling scaling{.init_scale = 256.0F, .growth_interval = 4};
  nn::Sequential straight = model(7);
  optim::AdamW opt1(straight.parameters(), optim::AdamW::defaults());
  opt1.enable_loss_scaling(scaling);
  fit(straight, opt1, train, 3);

  nn::Sequential first = model(7);
  optim::AdamW opt2(first.parameters(), optim::AdamW::defaults());
  opt2.enable_loss_scaling(scaling);
  TrainerOptions o = options(1);
  o.checkpoint_path = tmp("loss_scale.safetensors");
  Trainer(first, opt2, o).fit(train);
  EXPECT_EQ(opt2.loss_scale_state().growth_count, 2);

  nn::Sequential second = model(99);
  optim::AdamW opt3(second.parameters(), optim::AdamW::defaults());
  opt3.enable_loss_scaling(scaling);
  Trainer resumed(second, opt3, options(3));
  resumed.resume(o.checkpoint_path);
  EXPECT_EQ(opt3.loss_scale_state().scale, 1024.0F);  // 2^8 grown at steps 4 and 8
  EXPECT_EQ(opt3.loss_scale_state().growth_count, 2);
  resumed.fit(train);
  EXPECT_EQ(second.parameters().to_host(), straight.parameters().to_host());
  EXPECT_EQ(opt3.loss_scale_state().scale, opt1.loss_scale_state().scale);
  EXPECT_EQ(opt3.loss_scale_state().growth_count, opt1.loss_scale_state().growth_count);

  // The other way round is refused, naming the mismatch.
  nn::Sequential third = model(99);
  optim::AdamW unscaled(third.parameters(), optim::AdamW::defaults());
  Trainer wrong(third, unscaled, options(3));
  const std::string msg = testing::error_of([&] { wrong.resume(o.checkpoint_path); });
  EXPECT_NE(msg.find("loss scaling"), std::string::npos) << msg;
}

}  // namespace
}  // namespace cutrain::train
