// Gradient accumulation (Note [gradient accumulation]): A micro-batches make one optimizer step
// whose gradient is the mean over all their samples, so a run with batch B and A steps
// accumulated ends where a run with batch A x B ends (to rounding) - including the epoch's
// short last group, whose micro-batches count by their rows. Accumulated runs resume exactly
// from mid-epoch checkpoints, which fall between steps.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "cutrain/data.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "support/blobs.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "support/temp_path.hpp"

namespace cutrain::train {
namespace {

std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_accumulation_test", name);
}

// No layer that depends on the batch: then accumulation is exactly a larger batch.
nn::Sequential plain_model(Device device) {
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 24).emplace<nn::Activation>(nn::Activation::Kind::kTanh);
  m.emplace<nn::Linear>(24, 3);
  m.build(device, 11);
  return m;
}

TrainerOptions options(std::int64_t batch, std::int64_t accumulate) {
  TrainerOptions o;
  o.epochs = 2;
  o.batch_size = batch;
  o.accumulate_steps = accumulate;
  o.seed = 5;
  o.clip_norm = 0.5F;  // clipping acts on the accumulated gradient
  o.progress = false;
  return o;
}

// 300 rows: batches of 8 are 37 full ones and one of 4, so the last step of each epoch
// accumulates 8 + 4 rows - the same 12 samples as the last batch of 32.
void check_equals_one_batch(Device device) {
  const data::Dataset train = testing::blobs(300, 8, 3, 2.0F, 0.8F, 4);
  nn::Sequential big = plain_model(device), accumulated = plain_model(device),
                 small = plain_model(device);
  optim::Sgd big_opt(big.parameters(), {.lr = 0.1F, .momentum = 0.9F});
  optim::Sgd acc_opt(accumulated.parameters(), {.lr = 0.1F, .momentum = 0.9F});
  optim::Sgd small_opt(small.parameters(), {.lr = 0.1F, .momentum = 0.9F});
  const FitResult want = Trainer(big, big_opt, options(32, 1)).fit(train);
  const FitResult got = Trainer(accumulated, acc_opt, options(8, 4)).fit(train);
  Trainer(small, small_opt, options(8, 1)).fit(train);

  EXPECT_EQ(acc_opt.applied_steps(), 20);  // 10 steps an epoch, as with batch 32
  const auto w = big.parameters().to_host(), a = accumulated.parameters().to_host(),
             s = small.parameters().to_host();
  double scale = 0, moved = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(w[i])));
    moved = std::max(moved, std::fabs(static_cast<double>(w[i]) - s[i]));
  }
  for (std::size_t i = 0; i < w.size(); ++i)
    ASSERT_NEAR(a[i], w[i], 2e-6 * scale) << "element " << i;
  EXPECT_GT(moved, 1e-2 * scale) << "batch 8 without accumulation must end elsewhere";
  ASSERT_EQ(got.history.size(), 2U);
  for (std::size_t e = 0; e < 2; ++e)  // the mean pre-clip norm of the same 10 gradients
    EXPECT_NEAR(got.history[e].grad_norm, want.history[e].grad_norm,
                1e-5 * want.history[e].grad_norm);
}

TEST(GradientAccumulation, EqualsOneBatchOfAllTheSamples) {
  check_equals_one_batch(Device::cpu());
}

TEST(GradientAccumulationGpu, EqualsOneBatchOfAllTheSamples) {
  CUTRAIN_REQUIRE_GPU();
  check_equals_one_batch(Device::cuda(0));
}

nn::Sequential noisy_model(std::uint64_t seed) {  // dropout and BatchNorm: RNG and buffers
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 16).emplace<nn::BatchNorm1d>(16);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.2F);
  m.emplace<nn::Linear>(16, 3);
  m.build(Device::cpu(), seed);
  return m;
}

struct StopAt : Callback {
  Trainer* trainer = nullptr;
  void on_batch_end(std::int64_t epoch, std::int64_t batch) override {
    if (epoch == 2 && batch == 10) trainer->request_stop();  // inside the step of batches 9-12
  }
};

TEST(GradientAccumulation, ResumesMidEpochExactlyBetweenSteps) {
  const data::Dataset train = testing::blobs(300, 8, 3, 2.0F, 0.8F, 6);
  nn::Sequential straight = noisy_model(3);
  optim::AdamW straight_opt(straight.parameters(), optim::AdamW::defaults());
  const FitResult full = Trainer(straight, straight_opt, options(8, 4)).fit(train);

  nn::Sequential part = noisy_model(3);
  optim::AdamW part_opt(part.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(8, 4);
  o.checkpoint_path = tmp("accumulated.safetensors");
  o.checkpoint_every = 3;  // steps: after batches 12, 24, 36 of each epoch
  Trainer stopped(part, part_opt, o);
  auto stop = std::make_shared<StopAt>();
  stop->trainer = &stopped;
  stopped.add_callback(stop);
  EXPECT_TRUE(stopped.fit(train).interrupted);
  EXPECT_EQ(stopped.state().batch, 12) << "the stop waits for the step's last micro-batch";
  EXPECT_EQ(stopped.state().step, 13);

  nn::Sequential resumed = noisy_model(99);  // everything comes from the file
  optim::AdamW resumed_opt(resumed.parameters(), optim::AdamW::defaults());
  Trainer t(resumed, resumed_opt, options(8, 4));
  t.resume(o.checkpoint_path);
  const FitResult rest = t.fit(train);
  ASSERT_EQ(rest.history.size(), 1U);
  EXPECT_EQ(rest.history[0].train_loss, full.history[1].train_loss);
  EXPECT_EQ(rest.history[0].grad_norm, full.history[1].grad_norm);
  EXPECT_EQ(resumed.parameters().to_host(), straight.parameters().to_host());
  EXPECT_EQ(resumed.buffers().to_host(), straight.buffers().to_host());

  // Batch 12 is inside a step of 5 micro-batches: refused, not silently misaligned.
  nn::Sequential other = noisy_model(3);
  optim::AdamW other_opt(other.parameters(), optim::AdamW::defaults());
  Trainer five(other, other_opt, options(8, 5));
  five.resume(o.checkpoint_path);
  const std::string e = testing::error_of([&] { five.fit(train); });
  EXPECT_NE(e.find("after batch 12 of epoch 2"), std::string::npos) << e;
  EXPECT_NE(e.find("accumulate_steps 4 -> 5"), std::string::npos) << e;
  EXPECT_NE(testing::error_of([&] {
              Trainer(other, other_opt, options(8, 0));
            }).find("accumulate_steps = 0 is invalid"),
            std::string::npos);
}

}  // namespace
}  // namespace cutrain::train
