// Weight averaging (Note [weight averaging]): the trainer's average is the lerp recurrence over
// the parameters after every step - recomputed here on the host from the same run's parameters,
// bit for bit - it leaves the training itself untouched, validation reports the averaged
// weights' metrics, and checkpoints carry the average so a resumed run ends with the same one.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "cutrain/data.hpp"
#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "kernels/ops/axpy.cuh"
#include "support/blobs.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain::train {
namespace {

std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_weight_average_test", name);
}

nn::Sequential model(std::uint64_t seed) {  // BatchNorm and dropout: buffers and masks too
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 16).emplace<nn::BatchNorm1d>(16);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.1F);
  m.emplace<nn::Linear>(16, 3);
  m.build(Device::cpu(), seed);
  return m;
}

TrainerOptions options(float decay) {
  TrainerOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  o.seed = 3;
  o.ema_decay = decay;
  o.progress = false;
  return o;
}

// Records the parameters after every step (the CPU backend has finished the step by then).
struct Record : Callback {
  nn::Sequential* m = nullptr;
  std::vector<std::vector<float>> after_step;
  void on_batch_end(std::int64_t, std::int64_t) override {
    after_step.push_back(m->parameters().to_host());
  }
};

TEST(WeightAverage, IsTheLerpRecurrenceAndLeavesTrainingAlone) {
  const data::Dataset train = testing::blobs(200, 8, 3, 2.0F, 0.8F, 1);
  nn::Sequential plain = model(5), averaged = model(5);
  optim::AdamW plain_opt(plain.parameters(), optim::AdamW::defaults());
  optim::AdamW avg_opt(averaged.parameters(), optim::AdamW::defaults());
  auto record = std::make_shared<Record>();
  record->m = &plain;
  Trainer p(plain, plain_opt, options(0));
  p.add_callback(record);
  p.fit(train);
  Trainer t(averaged, avg_opt, options(0.9F));
  t.fit(train);
  EXPECT_EQ(averaged.parameters().to_host(), plain.parameters().to_host())
      << "averaging must not change the training";
  ASSERT_EQ(t.state().ema_updates, 26);  // 13 batches an epoch
  ASSERT_EQ(record->after_step.size(), 26U);

  std::vector<float> want = record->after_step[0];  // the first step copies
  for (std::size_t k = 1; k < record->after_step.size(); ++k)
    for (std::size_t i = 0; i < want.size(); ++i)
      want[i] = rules::lerp(want[i], record->after_step[k][i], 1.0F - 0.9F);
  const std::vector<float> trained = averaged.parameters().to_host();
  t.apply_ema();
  EXPECT_EQ(averaged.parameters().to_host(), want);
  EXPECT_NE(want, trained);
}

TEST(WeightAverage, ValidationJudgesTheAverage) {
  const data::Dataset train = testing::blobs(200, 8, 3, 2.0F, 0.8F, 1);
  const data::Dataset val = testing::blobs(60, 8, 3, 2.0F, 0.8F, 2);
  nn::Sequential m = model(5);
  optim::Sgd opt(m.parameters(), {.lr = 0.05F, .momentum = 0.9F});
  TrainerOptions o = options(0.8F);
  o.epochs = 1;
  Trainer t(m, opt, o);
  const FitResult r = t.fit(train, &val);
  const std::vector<float> trained = m.parameters().to_host();
  const EvalResult averaged = t.evaluate_averaged(val);
  EXPECT_EQ(m.parameters().to_host(), trained) << "evaluating the average puts the weights back";
  EXPECT_EQ(r.history[0].val_loss, averaged.loss);
  EXPECT_EQ(r.history[0].val_accuracy, averaged.accuracy);
  EXPECT_NE(t.evaluate(val).loss, averaged.loss);
}

struct StopAt : Callback {
  Trainer* trainer = nullptr;
  void on_batch_end(std::int64_t epoch, std::int64_t batch) override {
    if (epoch == 2 && batch == 5) trainer->request_stop();
  }
};

TEST(WeightAverage, ResumesExactlyAndRefusesBadUse) {
  const data::Dataset train = testing::blobs(200, 8, 3, 2.0F, 0.8F, 1);
  nn::Sequential straight = model(5);
  optim::Adam straight_opt(straight.parameters(), {.lr = 0.01F});
  Trainer s(straight, straight_opt, options(0.95F));
  s.fit(train);
  s.apply_ema();

  nn::Sequential part = model(5);
  optim::Adam part_opt(part.parameters(), {.lr = 0.01F});
  TrainerOptions o = options(0.95F);
  o.checkpoint_path = tmp("ema.safetensors");
  Trainer stopped(part, part_opt, o);
  auto stop = std::make_shared<StopAt>();
  stop->trainer = &stopped;
  stopped.add_callback(stop);
  EXPECT_TRUE(stopped.fit(train).interrupted);
  const io::SafetensorsFile file = io::load_safetensors(o.checkpoint_path);
  EXPECT_NE(file.find("ema.layers.0.weight"), nullptr);
  EXPECT_EQ(file.metadata.at("ema_updates"), "18");

  nn::Sequential resumed = model(99);
  optim::Adam resumed_opt(resumed.parameters(), {.lr = 0.01F});
  Trainer r(resumed, resumed_opt, options(0.95F));
  r.resume(o.checkpoint_path);
  r.fit(train);
  r.apply_ema();
  EXPECT_EQ(resumed.parameters().to_host(), straight.parameters().to_host());

  // A run without averaging resumes the same file and ignores the average.
  nn::Sequential plain = model(99);
  optim::Adam plain_opt(plain.parameters(), {.lr = 0.01F});
  Trainer without(plain, plain_opt, options(0));
  without.resume(o.checkpoint_path);
  EXPECT_EQ(without.state().ema_updates, 0);
  EXPECT_NE(testing::error_of([&] { without.apply_ema(); }).find("no weight average"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              Trainer(plain, plain_opt, options(1.0F));
            }).find("ema_decay = 1 is invalid"),
            std::string::npos);
}

}  // namespace
}  // namespace cutrain::train
