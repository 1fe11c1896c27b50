// The trainer: it learns, resumes exactly, stops early restoring the best epoch, fires
// callbacks in order, writes metrics files that parse, and rejects mismatched data.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <tuple>

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
  return testing::temp_path("cutrain_trainer_test", name);
}

// Three Gaussian blobs in 8 dimensions: linearly separable with margin.
data::Dataset blobs(std::int64_t rows, std::uint32_t seed) {
  return testing::blobs(rows, 8, 3, 2.0F, 0.6F, seed);
}

nn::Sequential model(std::uint64_t seed, Device device = Device::cpu()) {
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 32).emplace<nn::BatchNorm1d>(32);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.1F);
  m.emplace<nn::Linear>(32, 3);
  m.build(device, seed);
  return m;
}

TrainerOptions options(std::int64_t epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.seed = 9;
  o.clip_norm = 1.0F;
  o.schedule = std::make_shared<optim::CosineLr>(0.01, 60);
  o.progress = false;
  return o;
}

TEST(Trainer, LearnsSeparableBlobs) {
  const data::Dataset train = blobs(600, 1), val = blobs(150, 2);
  nn::Sequential m = model(3);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  Trainer t(m, opt, options(5));
  const FitResult r = t.fit(train, &val);
  ASSERT_EQ(r.history.size(), 5u);
  EXPECT_GT(r.history.back().val_accuracy, 0.95);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_GT(r.history.back().grad_norm, 0.0);
  EXPECT_EQ(r.history.back().skipped_steps, 0);
  EXPECT_NEAR(t.evaluate(val).accuracy, r.history.back().val_accuracy, 1e-12);
}

// Note [evaluation on the device]: the GPU's evaluation (sums kept on the device) counts the
// correct rows as the CPU's does for the same weights; the loss agrees to GEMM rounding.
TEST(TrainerGpu, EvaluateAgreesWithTheCpu) {
  CUTRAIN_REQUIRE_GPU();
  const data::Dataset train = blobs(300, 1), val = blobs(257, 2);
  nn::Sequential cpu = model(3);
  optim::Adam opt(cpu.parameters(), {.lr = 0.01F});
  Trainer(cpu, opt, options(2)).fit(train);
  nn::Sequential gpu = model(3, Device::cuda(0));
  gpu.parameters().copy_from(cpu.parameters());
  gpu.buffers().copy_from(cpu.buffers());
  optim::Adam opt_gpu(gpu.parameters(), {.lr = 0.01F});
  const EvalResult c = Trainer(cpu, opt, options(1)).evaluate(val);
  const EvalResult g = Trainer(gpu, opt_gpu, options(1)).evaluate(val);
  EXPECT_EQ(g.samples, c.samples);
  // GEMM rounding may flip a near-tied row; blobs this far apart leave none that close.
  EXPECT_NEAR(g.accuracy, c.accuracy, 1.0 / 257 + 1e-12);
  EXPECT_NEAR(g.loss, c.loss, 1e-5 * c.loss);
}

// 3 epochs straight == 1 epoch, checkpoint, a new model/optimizer/trainer, resume, 2 more.
void check_resume(Device device) {
  const data::Dataset train = blobs(300, 4);
  nn::Sequential straight = model(7, device);
  optim::AdamW opt1(straight.parameters(), optim::AdamW::defaults());
  Trainer(straight, opt1, options(3)).fit(train);

  nn::Sequential first = model(7, device);
  optim::AdamW opt2(first.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.checkpoint_path = tmp("resume_" + device.str() + ".safetensors");
  Trainer(first, opt2, o).fit(train);

  nn::Sequential second = model(12345, device);  // everything must come from the file
  optim::AdamW opt3(second.parameters(), optim::AdamW::defaults());
  Trainer resumed(second, opt3, options(3));
  resumed.resume(o.checkpoint_path);
  EXPECT_EQ(resumed.state().epoch, 1);
  const FitResult r = resumed.fit(train);
  EXPECT_EQ(r.history.size(), 2u);
  EXPECT_EQ(second.parameters().to_host(), straight.parameters().to_host());
  EXPECT_EQ(second.buffers().to_host(), straight.buffers().to_host());
  EXPECT_EQ(second.forward_count(), straight.forward_count());
  EXPECT_EQ(second.training_forward_count(), straight.training_forward_count());
}

TEST(Trainer, ResumeIsExact) {
  check_resume(Device::cpu());
}
TEST(TrainerGpu, ResumeIsExact) {
  CUTRAIN_REQUIRE_GPU();
  check_resume(Device::cuda(0));
}

// Note [dropout stream]: only training passes move dropout's stream, so validating after every
// epoch trains exactly the weights a run without validation trains.
TEST(Trainer, ValidationDoesNotChangeTraining) {
  const data::Dataset train = blobs(300, 4), val = blobs(90, 5);
  nn::Sequential with_val = model(7), without = model(7);
  optim::Adam a(with_val.parameters(), {.lr = 0.01F}), b(without.parameters(), {.lr = 0.01F});
  Trainer(with_val, a, options(2)).fit(train, &val);
  Trainer(without, b, options(2)).fit(train);
  EXPECT_EQ(with_val.parameters().to_host(), without.parameters().to_host());
  EXPECT_EQ(with_val.buffers().to_host(), without.buffers().to_host());
  EXPECT_GT(with_val.forward_count(), without.forward_count());  // validation did run
}

// Note [mid-epoch resume]: a stop requested in the middle of epoch 2 saves a checkpoint there;
// resuming it (in a new process's objects, or the same trainer) ends with the weights of an
// uninterrupted run and reports the interrupted epoch's metrics as that run did. The periodic
// checkpoints (checkpoint_every) taken mid-epoch resume exactly as well.
struct AtBatch : Callback {
  std::vector<std::tuple<std::int64_t, std::int64_t, std::function<void()>>> actions;
  void on_batch_end(std::int64_t e, std::int64_t b) override {
    for (auto& [epoch, batch, f] : actions)
      if (e == epoch && b == batch) f();
  }
};

TEST(Trainer, MidEpochCheckpointsResumeExactly) {
  const data::Dataset train = blobs(300, 4), val = blobs(90, 5);
  auto fresh = [](std::uint64_t seed) {
    auto m = std::make_unique<nn::Sequential>(model(seed));
    auto opt = std::make_unique<optim::AdamW>(m->parameters(), optim::AdamW::defaults());
    return std::make_pair(std::move(m), std::move(opt));
  };
  auto [straight, opt1] = fresh(7);
  const FitResult full = Trainer(*straight, *opt1, options(3)).fit(train, &val);
  ASSERT_EQ(full.history.size(), 3u);

  auto [a, opt2] = fresh(7);
  TrainerOptions o = options(3);
  o.checkpoint_path = tmp("mid.safetensors");
  o.checkpoint_every = 4;  // 10 batches an epoch: saves at epoch 2's batches 2 and 6
  Trainer ta(*a, *opt2, o);
  auto at = std::make_shared<AtBatch>();
  at->actions.emplace_back(2, 3, [&] {  // the latest checkpoint is epoch 2, batch 2
    std::filesystem::copy_file(o.checkpoint_path, tmp("periodic.safetensors"),
                               std::filesystem::copy_options::overwrite_existing);
  });
  at->actions.emplace_back(2, 5, [&] { ta.request_stop(); });
  ta.add_callback(at);
  const FitResult part = ta.fit(train, &val);
  EXPECT_TRUE(part.interrupted);
  EXPECT_EQ(part.history.size(), 1u);
  EXPECT_EQ(ta.state().epoch, 1);
  EXPECT_EQ(ta.state().batch, 5);
  // (the trainer's own later epochs will overwrite its checkpoint file)
  std::filesystem::copy_file(o.checkpoint_path, tmp("stopped.safetensors"),
                             std::filesystem::copy_options::overwrite_existing);

  auto expect_like_straight = [&](const FitResult& r, nn::Sequential& m, const std::string& what) {
    ASSERT_EQ(r.history.size(), 2u) << what;
    for (std::size_t e = 0; e < 2; ++e) {
      EXPECT_EQ(r.history[e].epoch, full.history[e + 1].epoch) << what;
      EXPECT_EQ(r.history[e].train_loss, full.history[e + 1].train_loss) << what << " epoch " << e;
      EXPECT_EQ(r.history[e].grad_norm, full.history[e + 1].grad_norm) << what << " epoch " << e;
      EXPECT_EQ(r.history[e].val_loss, full.history[e + 1].val_loss) << what << " epoch " << e;
      EXPECT_EQ(r.history[e].skipped_steps, full.history[e + 1].skipped_steps) << what;
    }
    EXPECT_EQ(m.parameters().to_host(), straight->parameters().to_host()) << what;
    EXPECT_EQ(m.buffers().to_host(), straight->buffers().to_host()) << what;
  };
  for (const char* file : {"stopped.safetensors", "periodic.safetensors"}) {
    auto [m, opt] = fresh(12345);  // everything must come from the file
    Trainer t(*m, *opt, options(3));
    t.resume(tmp(file));
    EXPECT_EQ(t.state().batch, std::string(file) == "stopped.safetensors" ? 5 : 2);
    expect_like_straight(t.fit(train, &val), *m, file);
  }
  // The interrupted trainer itself goes on from where it stopped.
  expect_like_straight(ta.fit(train, &val), *a, "same trainer");

  // The position only makes sense in the order it was counted in: another batch size (even one
  // whose epoch still has a batch 5), seed, data set or shuffling is refused, naming the change.
  auto refused = [&](const TrainerOptions& changed, const data::Dataset& d, const char* what) {
    auto [m, opt] = fresh(1);
    Trainer t(*m, *opt, changed);
    t.resume(tmp("stopped.safetensors"));
    const std::vector<float> before = m->parameters().to_host();
    const std::string e = testing::error_of([&] { t.fit(d, &val); });
    EXPECT_NE(e.find("taken after batch 5 of epoch 2"), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_EQ(m->parameters().to_host(), before) << what;  // refused before any step
  };
  TrainerOptions changed = options(3);
  changed.batch_size = 16;
  refused(changed, train, "batch_size 32 -> 16");
  changed = options(3);
  changed.seed = 10;
  refused(changed, train, "seed 9 -> 10");
  changed = options(3);
  changed.shuffle = false;
  refused(changed, train, "shuffle 1 -> 0");
  refused(options(3), blobs(290, 4), "training rows 300 -> 290");
  // At an epoch boundary the next epoch draws a new order anyway: a change is allowed there.
  {
    auto [m, opt] = fresh(1);
    TrainerOptions next = options(4);
    next.batch_size = 16;
    Trainer t(*m, *opt, next);
    t.resume(o.checkpoint_path);  // the interrupted trainer's last save: after epoch 3
    ASSERT_EQ(t.state().batch, 0);
    EXPECT_EQ(t.fit(train, &val).history.size(), 1u);
  }
  TrainerOptions no_path = options(1);
  no_path.checkpoint_every = 3;
  EXPECT_THROW(Trainer(*a, *opt2, no_path), Error);
}

// Note [schedule state]: a ReduceLROnPlateau run resumed from its checkpoint continues the
// schedule (best metric, bad epochs, reduced lr) instead of starting it afresh. The threshold
// makes every epoch after the first a non-improvement, so the straight run halves the lr after
// epoch 2 - which a fresh schedule (best = +inf) would not.
TEST(Trainer, ResumeRestoresThePlateauSchedule) {
  const data::Dataset train = blobs(300, 4), val = blobs(90, 5);
  auto plateau_options = [](std::int64_t epochs) {
    TrainerOptions o = options(epochs);
    o.schedule = std::make_shared<optim::ReduceLrOnPlateau>(0.01, 0.5, 0, 0.9);
    o.schedule_per_iteration = false;
    return o;
  };
  nn::Sequential straight = model(7);
  optim::Adam opt1(straight.parameters(), {.lr = 0.01F});
  const FitResult full = Trainer(straight, opt1, plateau_options(3)).fit(train, &val);
  ASSERT_EQ(full.history.size(), 3u);
  EXPECT_EQ(full.history[2].lr, 0.005F) << "the straight run must reduce the lr after epoch 2";

  nn::Sequential first = model(7);
  optim::Adam opt2(first.parameters(), {.lr = 0.01F});
  TrainerOptions o = plateau_options(1);
  o.checkpoint_path = tmp("plateau.safetensors");
  Trainer(first, opt2, o).fit(train, &val);

  nn::Sequential second = model(99);
  optim::Adam opt3(second.parameters(), {.lr = 0.01F});
  Trainer resumed(second, opt3, plateau_options(3));
  resumed.resume(o.checkpoint_path);
  const FitResult rest = resumed.fit(train, &val);
  ASSERT_EQ(rest.history.size(), 2u);
  EXPECT_EQ(rest.history[1].lr, 0.005F);
  EXPECT_EQ(second.parameters().to_host(), straight.parameters().to_host());
}

// Note [resident datasets]: the same batches as streaming, so training is bit-identical.
void check_resident_data(Device device) {
  const data::Dataset train = blobs(300, 4);
  std::vector<float> weights[2];
  for (const bool resident : {false, true}) {
    nn::Sequential m = model(7, device);
    optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
    TrainerOptions o = options(2);
    o.resident_data = resident;
    Trainer(m, opt, o).fit(train);
    weights[resident ? 1 : 0] = m.parameters().to_host();
  }
  EXPECT_EQ(weights[1], weights[0]);
}

TEST(Trainer, ResidentDataTrainsBitForBitAsStreaming) {
  check_resident_data(Device::cpu());
}
TEST(TrainerGpu, ResidentDataTrainsBitForBitAsStreaming) {
  CUTRAIN_REQUIRE_GPU();
  check_resident_data(Device::cuda(0));
}

struct Recorder : Callback {
  std::vector<std::string> events;
  std::map<std::int64_t, std::vector<float>> params;
  nn::Sequential* m = nullptr;
  void on_epoch_begin(std::int64_t e) override { events.push_back("begin " + std::to_string(e)); }
  void on_batch_end(std::int64_t e, std::int64_t b) override {
    if (b == 1) events.push_back("batch " + std::to_string(e) + ".1");
  }
  void on_epoch_end(const EpochMetrics& mt) override {
    events.push_back("end " + std::to_string(mt.epoch));
    params[mt.epoch] = m->parameters().to_host();
  }
};

TEST(Trainer, EarlyStoppingRestoresTheBestEpochAndCallbacksFireInOrder) {
  const data::Dataset train = blobs(300, 5), val = blobs(90, 6);
  nn::Sequential m = model(8);
  optim::Sgd opt(m.parameters(), {.lr = 0.05F, .momentum = 0.9F});
  TrainerOptions o = options(10);
  o.schedule = nullptr;
  o.patience = 2;
  o.min_delta = 1e9;  // no later epoch counts as an improvement: stop after epoch 3
  o.metrics_path = tmp("metrics.csv");
  Trainer t(m, opt, o);
  auto rec = std::make_shared<Recorder>();
  rec->m = &m;
  t.add_callback(rec);
  const FitResult r = t.fit(train, &val);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.best_epoch, 1);
  EXPECT_EQ(r.history.size(), 3u);
  EXPECT_EQ(m.parameters().to_host(), rec->params.at(1));
  EXPECT_NE(rec->params.at(3), rec->params.at(1));
  EXPECT_EQ(rec->events,
            (std::vector<std::string>{"begin 1", "batch 1.1", "end 1", "begin 2", "batch 2.1",
                                      "end 2", "begin 3", "batch 3.1", "end 3"}));
  std::ifstream csv(tmp("metrics.csv"));
  std::string header, line;
  std::getline(csv, header);
  EXPECT_EQ(header,
            "epoch,lr,train_loss,val_loss,val_accuracy,grad_norm,skipped_steps,seconds,"
            "samples_per_s");
  int rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 8);
    EXPECT_EQ(std::stoi(line.substr(0, line.find(','))), rows);
  }
  EXPECT_EQ(rows, 3);

  // The same run interrupted after epoch 2 and resumed: the checkpoint carries the best epoch's
  // weights, so the resumed run stops at epoch 3 and restores epoch 1, as the straight run did.
  nn::Sequential m2 = model(8);
  optim::Sgd opt2(m2.parameters(), {.lr = 0.05F, .momentum = 0.9F});
  TrainerOptions o2 = o;
  o2.epochs = 2;
  o2.metrics_path.clear();
  o2.checkpoint_path = tmp("early_stop.safetensors");
  EXPECT_FALSE(Trainer(m2, opt2, o2).fit(train, &val).stopped_early);
  nn::Sequential m3 = model(99);
  optim::Sgd opt3(m3.parameters(), {.lr = 0.05F, .momentum = 0.9F});
  o2.checkpoint_path.clear();
  o2.epochs = 10;
  Trainer resumed(m3, opt3, o2);
  resumed.resume(tmp("early_stop.safetensors"));
  EXPECT_EQ(resumed.state().best_epoch, 1);
  EXPECT_TRUE(resumed.state().has_best_weights);
  const FitResult r3 = resumed.fit(train, &val);
  EXPECT_TRUE(r3.stopped_early);
  EXPECT_EQ(r3.best_epoch, 1);
  EXPECT_EQ(r3.history.size(), 1u);  // epoch 3 only
  EXPECT_EQ(m3.parameters().to_host(), rec->params.at(1));
}

TEST(Trainer, JsonLinesMetricsAndBadInput) {
  const data::Dataset train = blobs(90, 7);
  nn::Sequential m = model(9);
  optim::Adam opt(m.parameters(), {});
  TrainerOptions o = options(2);
  o.metrics_path = tmp("metrics.jsonl");
  Trainer(m, opt, o).fit(train);
  std::ifstream in(tmp("metrics.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("epoch").get<int>(), ++n);
    EXPECT_TRUE(j.at("val_loss").is_null());
    EXPECT_GT(j.at("train_loss").get<double>(), 0.0);
  }
  EXPECT_EQ(n, 2);
  data::Dataset wrong = blobs(30, 1);
  wrong.features = 7;
  wrong.x.resize(30 * 7);
  EXPECT_THROW(Trainer(m, opt, options(1)).fit(wrong), Error);
  TrainerOptions bad = options(1);
  bad.metrics_path = tmp("metrics.txt");
  EXPECT_THROW(Trainer(m, opt, bad).fit(train), Error);
  bad = options(1);
  bad.clip_norm = -1;
  EXPECT_THROW(Trainer(m, opt, bad), Error);
  // Early stopping without validation data would never stop: refused, not ignored.
  bad = options(1);
  bad.patience = 2;
  const std::string e = testing::error_of([&] { Trainer(m, opt, bad).fit(train); });
  EXPECT_NE(e.find("patience = 2 stops on the validation loss"), std::string::npos) << e;
  const data::Dataset none;
  EXPECT_NE(testing::error_of([&] { Trainer(m, opt, bad).fit(train, &none); }).find("patience"),
            std::string::npos);
}

}  // namespace
}  // namespace cutrain::train
