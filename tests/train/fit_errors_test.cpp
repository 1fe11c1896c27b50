// Note [a fit that throws] (cutrain/train/trainer.hpp): an error inside an epoch leaves the model
// past what state() records, so fit() refuses to go on until resume(); an error before training
// or a checkpoint that could not be written leaves fit() able to continue, and the continued run
// is the uninterrupted one bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "support/errors.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;
namespace fs = std::filesystem;

constexpr std::int64_t kEpochs = 3;

// The weights and buffers of an uninterrupted kEpochs-epoch run.
struct Reference {
  std::vector<float> params, buffers;
};
Reference uninterrupted(const data::Dataset& train, const TrainerOptions& o) {
  nn::Sequential m = model(7);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  Trainer(m, opt, o).fit(train);
  return {m.parameters().to_host(), m.buffers().to_host()};
}

// Throws once, at batch `batch` of epoch `epoch` (1-based), or at that epoch's end (batch 0).
struct ThrowOnce : Callback {
  std::int64_t epoch = 0, batch = 0;
  bool thrown = false;
  void on_batch_end(std::int64_t e, std::int64_t b) override {
    if (batch > 0 && e == epoch && b == batch && !thrown) {
      thrown = true;
      throw std::runtime_error("the callback's own error");
    }
  }
  void on_epoch_end(const EpochMetrics& m) override {
    if (batch == 0 && m.epoch == epoch && !thrown) {
      thrown = true;
      throw std::runtime_error("the callback's own error");
    }
  }
};

TEST(FitErrors, AnErrorInsideAnEpochStopsFitUntilResume) {
  const data::Dataset train = blobs(300, 4);
  TrainerOptions o = options(kEpochs);
  const Reference straight = uninterrupted(train, o);
  // Inside epoch 2 (after 3 of its 10 batches), and at epoch 2's end before it was recorded.
  for (const std::int64_t batch : {3, 0}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    o.checkpoint_path = tmp("fit_error_" + std::to_string(batch) + ".safetensors");
    nn::Sequential m = model(7);
    optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
    Trainer t(m, opt, o);
    auto thrower = std::make_shared<ThrowOnce>();
    thrower->epoch = 2;
    thrower->batch = batch;
    t.add_callback(thrower);
    EXPECT_THROW(t.fit(train), std::runtime_error);
    EXPECT_EQ(t.state().epoch, 1) << "epoch 2 was never recorded";
    // Going on would train epoch 2 again from weights already moved by it.
    const std::string e = testing::error_of([&] { t.fit(train); });
    EXPECT_NE(e.find("the last fit() ended by an error in epoch 2"), std::string::npos) << e;
    EXPECT_NE(e.find("resume() from a checkpoint"), std::string::npos) << e;
    // The refusal changed nothing; resuming epoch 1's checkpoint makes the run whole again.
    t.resume(o.checkpoint_path);
    const FitResult rest = t.fit(train);
    EXPECT_EQ(rest.history.size(), 2U);
    EXPECT_EQ(m.parameters().to_host(), straight.params);
    EXPECT_EQ(m.buffers().to_host(), straight.buffers);
  }
}

TEST(FitErrors, AnErrorBeforeTrainingLeavesFitUsable) {
  const data::Dataset train = blobs(300, 4);
  const TrainerOptions o = options(kEpochs);
  const Reference straight = uninterrupted(train, o);
  nn::Sequential m = model(7);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  Trainer t(m, opt, o);
  const data::Dataset wider = testing::blobs(300, 9, 3, 2.0F, 0.6F, 4);  // 9 features, not 8
  const std::string e = testing::error_of([&] { t.fit(wider); });
  EXPECT_EQ(e.find("ended by an error"), std::string::npos) << e;
  EXPECT_NE(e.find("9"), std::string::npos) << e;
  t.fit(train);
  EXPECT_EQ(m.parameters().to_host(), straight.params);
  EXPECT_EQ(m.buffers().to_host(), straight.buffers);
}

// The checkpoint's directory vanishes (a full or unmounted disk, a cleaned-up scratch folder)
// once, before the checkpoint at the end of epoch 1, or before the periodic one after step 13
// (inside epoch 2): that save fails, and the state it would have written is the trainer's, so
// fit() again - once the directory is back - continues the run.
struct RemoveDirectoryOnce : Callback {
  fs::path directory;
  std::int64_t epoch = 0, batch = 0;
  bool done = false;
  void remove_once() {
    if (done) return;
    done = true;
    fs::remove_all(directory);
  }
  void on_batch_end(std::int64_t e, std::int64_t b) override {
    if (batch > 0 && e == epoch && b == batch) remove_once();
  }
  void on_epoch_end(const EpochMetrics& m) override {
    if (batch == 0 && m.epoch == epoch) remove_once();
  }
};

TEST(FitErrors, ACheckpointThatCannotBeWrittenLeavesFitUsable) {
  const data::Dataset train = blobs(300, 4);
  TrainerOptions o = options(kEpochs);
  const Reference straight = uninterrupted(train, o);
  o.checkpoint_every = 13;  // after batch 3 of epoch 2 (10 batches an epoch)
  for (const auto& [epoch, batch] : {std::pair<std::int64_t, std::int64_t>{1, 0}, {2, 3}}) {
    SCOPED_TRACE("epoch " + std::to_string(epoch) + " batch " + std::to_string(batch));
    const fs::path directory = tmp("vanishing_" + std::to_string(batch));
    fs::create_directories(directory);
    o.checkpoint_path = (directory / "run.safetensors").string();
    nn::Sequential m = model(7);
    optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
    Trainer t(m, opt, o);
    auto remover = std::make_shared<RemoveDirectoryOnce>();
    remover->directory = directory;
    remover->epoch = epoch;
    remover->batch = batch;
    t.add_callback(remover);
    const std::string e = testing::error_of([&] { t.fit(train); });
    EXPECT_NE(e.find("run.safetensors"), std::string::npos) << e;
    EXPECT_EQ(t.state().epoch, epoch - (batch > 0 ? 1 : 0));
    EXPECT_EQ(t.state().batch, batch);
    fs::create_directories(directory);
    t.fit(train);
    EXPECT_EQ(m.parameters().to_host(), straight.params);
    EXPECT_EQ(m.buffers().to_host(), straight.buffers);
    EXPECT_TRUE(fs::exists(o.checkpoint_path));
  }
}

}  // namespace
}  // namespace cutrain::train
