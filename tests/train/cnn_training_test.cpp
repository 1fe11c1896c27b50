// A convolutional model in the trainer: it learns, and a run resumed from a checkpoint - at an
// epoch boundary or mid-epoch - continues bit for bit as the uninterrupted run (as MLPs do,
// resume_test.cpp), BatchNorm2d statistics and dropout included, inside Residual blocks too.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

// Two classes of 6x6 images: a bright vertical or horizontal bar at a random place, plus noise.
data::Dataset bars(std::int64_t rows, std::uint32_t seed) {
  data::Dataset d;
  d.rows = rows;
  d.features = 36;
  d.classes = 2;
  d.x.assign(static_cast<std::size_t>(rows * 36), 0.0F);
  std::uint32_t s = seed;
  auto next = [&] {
    s = s * 1664525U + 1013904223U;
    return s >> 8;
  };
  for (std::int64_t r = 0; r < rows; ++r) {
    const int label = static_cast<int>(next() % 2), at = static_cast<int>(next() % 6);
    for (int k = 0; k < 6; ++k) {
      const int i = label == 0 ? k * 6 + at : at * 6 + k;
      d.x[static_cast<std::size_t>(r * 36 + i)] = 1.0F;
    }
    for (int i = 0; i < 36; ++i)
      d.x[static_cast<std::size_t>(r * 36 + i)] +=
          0.2F * (static_cast<float>(next() % 1000) / 1000.0F - 0.5F);
    d.labels.push_back(label);
  }
  return d;
}

// Asks the trainer to stop (what Ctrl-C does) after a given batch of a given epoch.
struct StopAt : Callback {
  StopAt(Trainer& t, std::int64_t e, std::int64_t b) : trainer(t), epoch(e), batch(b) {}
  void on_batch_end(std::int64_t e, std::int64_t b) override {
    if (e == epoch && b == batch) trainer.request_stop();
  }
  Trainer& trainer;
  std::int64_t epoch, batch;
};

// With `residual`, a Residual block (conv, BatchNorm2d, ReLU, Dropout) after the first ReLU.
nn::Sequential cnn(std::uint64_t seed, Device device, bool residual = false) {
  nn::Sequential m(36);
  m.emplace<nn::Unflatten>(1, Shape{1, 6, 6});
  m.emplace<nn::Conv2d>(1, 4, 3, 1, 1).emplace<nn::BatchNorm2d>(4);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  if (residual) {
    auto block = std::make_unique<nn::Residual>();
    block->emplace<nn::Conv2d>(4, 4, 3, 1, 1).emplace<nn::BatchNorm2d>(4);
    block->emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.1F);
    m.add(std::move(block));
  }
  m.emplace<nn::MaxPool2d>(2);
  m.emplace<nn::Flatten>().emplace<nn::Dropout>(0.1F).emplace<nn::Linear>(36, 2);
  m.build(device, seed);
  return m;
}

void check_resume(Device device, bool residual = false) {
  const data::Dataset train = bars(200, 3);
  nn::Sequential straight = cnn(7, device, residual);
  optim::AdamW opt1(straight.parameters(), optim::AdamW::defaults());
  const FitResult full = Trainer(straight, opt1, options(3)).fit(train);
  // It learns the bars (chance: ln 2 = 0.69).
  EXPECT_LT(full.history.back().train_loss, 0.45);
  EXPECT_LT(full.history.back().train_loss, full.history.front().train_loss);

  // Interrupted at the end of epoch 1, and mid-epoch (every 3 steps: 7 batches an epoch).
  for (const std::int64_t every : {std::int64_t{0}, std::int64_t{3}}) {
    SCOPED_TRACE(every);
    nn::Sequential first = cnn(7, device, residual);
    optim::AdamW opt2(first.parameters(), optim::AdamW::defaults());
    TrainerOptions o = options(every == 0 ? 1 : 2);
    o.checkpoint_path =
        tmp("cnn_resume_" + device.str() + (residual ? "_residual" : "") + ".safetensors");
    o.checkpoint_every = every;
    Trainer stopped(first, opt2, o);
    if (every > 0)  // a stop in the middle of epoch 2: saved after its next step, batch 4
      stopped.add_callback(std::make_shared<StopAt>(stopped, 2, 3));
    const FitResult part = stopped.fit(train);
    EXPECT_EQ(part.interrupted, every > 0);

    nn::Sequential second = cnn(12345, device, residual);  // everything must come from the file
    optim::AdamW opt3(second.parameters(), optim::AdamW::defaults());
    Trainer resumed(second, opt3, options(3));
    resumed.resume(o.checkpoint_path);
    resumed.fit(train);
    EXPECT_EQ(second.parameters().to_host(), straight.parameters().to_host());
    EXPECT_EQ(second.buffers().to_host(), straight.buffers().to_host());
    EXPECT_EQ(second.forward_count(), straight.forward_count());
  }
}

TEST(CnnTraining, LearnsAndResumesExactly) {
  check_resume(Device::cpu());
}
TEST(CnnTrainingGpu, LearnsAndResumesExactly) {
  CUTRAIN_REQUIRE_GPU();
  check_resume(Device::cuda(0));
}

// Residual blocks: their BatchNorm statistics and Dropout masks resume as the top level's do.
TEST(ResidualTraining, LearnsAndResumesExactly) {
  check_resume(Device::cpu(), true);
}
TEST(ResidualTrainingGpu, LearnsAndResumesExactly) {
  CUTRAIN_REQUIRE_GPU();
  check_resume(Device::cuda(0), true);
}

// The one-row last batch a BatchNorm1d cannot normalize is found inside a Residual's body too.
TEST(ResidualTraining, RefusesALastBatchOfOneRowItsBodyCannotNormalize) {
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 8);
  auto block = std::make_unique<nn::Residual>();
  block->emplace<nn::Linear>(8, 8).emplace<nn::BatchNorm1d>(8);
  m.add(std::move(block));
  m.emplace<nn::Linear>(8, 3);
  m.build(Device::cpu(), 1);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  const std::string e = testing::error_of([&] { Trainer(m, opt, options(1)).fit(blobs(65, 2)); });
  EXPECT_NE(e.find("holds 1 row (65 rows in batches of 32), which layer 1.body.1 (BatchNorm1d)"),
            std::string::npos)
      << e;
}

// At batch_size 1 every batch is one row: refused before the first step too (it used to end in
// BatchNorm1d's own check mid-epoch), however the rows divide. A 1x1 BatchNorm2d plane alike.
TEST(ResidualTraining, RefusesBatchesOfOneRowBatchNormCannotNormalize) {
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 8).emplace<nn::BatchNorm1d>(8).emplace<nn::Linear>(8, 3);
  m.build(Device::cpu(), 1);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.batch_size = 1;
  const std::string e = testing::error_of([&] { Trainer(m, opt, o).fit(blobs(64, 2)); });
  EXPECT_NE(e.find("batch_size = 1 gives every batch 1 row, which layer 1 (BatchNorm1d)"),
            std::string::npos)
      << e;

  nn::Sequential image(8);
  image.emplace<nn::Unflatten>(1, Shape{8, 1, 1}).emplace<nn::BatchNorm2d>(8);
  image.emplace<nn::Flatten>().emplace<nn::Linear>(8, 3);
  image.build(Device::cpu(), 1);
  optim::AdamW opt2(image.parameters(), optim::AdamW::defaults());
  o.drop_last = true;
  const std::string e2 = testing::error_of([&] { Trainer(image, opt2, o).fit(blobs(64, 2)); });
  EXPECT_NE(e2.find("which layer 1 (BatchNorm2d) cannot normalize"), std::string::npos) << e2;
}

}  // namespace
}  // namespace cutrain::train
