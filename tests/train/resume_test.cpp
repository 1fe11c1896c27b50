// Resuming the trainer: exact at epoch boundaries and mid-epoch (a requested stop, periodic
// checkpoints), refused when the data order would differ, and with the plateau schedule's state.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/train/data_spec.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

// 3 epochs straight == 1 epoch, checkpoint, a new model/optimizer/trainer, resume, 2 more - in
// each precision (Note [16-bit values in fp32 storage]: the 16-bit values derive from the master).
// Stochastic rounding (Note [16-bit compute copy]): the step's bits come from the model's seed
// and the applied step, both restored.
void check_resume(Device device, Precision precision = Precision::kFp32,
                  Rounding rounding = Rounding::kNearestEven) {
  const data::Dataset train = blobs(300, 4);
  auto build = [&](std::uint64_t seed) {
    nn::Sequential m = model(seed, device);
    m.set_precision(precision);
    m.set_rounding(rounding);
    return m;
  };
  nn::Sequential straight = build(7);
  optim::AdamW opt1(straight.parameters(), optim::AdamW::defaults());
  Trainer(straight, opt1, options(3)).fit(train);

  nn::Sequential first = build(7);
  optim::AdamW opt2(first.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.checkpoint_path = tmp("resume_" + device.str() + "_" + precision_name(precision) + "_" +
                          rounding_name(rounding) + ".safetensors");
  Trainer(first, opt2, o).fit(train);

  nn::Sequential second = build(12345);  // everything must come from the file
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
TEST(Trainer, ResumeIsExactInSixteenBits) {
  check_resume(Device::cpu(), Precision::kBf16);
  check_resume(Device::cpu(), Precision::kFp16);
}
TEST(Trainer, ResumeIsExactWithStochasticRounding) {
  check_resume(Device::cpu(), Precision::kBf16, Rounding::kStochastic);
  check_resume(Device::cpu(), Precision::kFp16, Rounding::kStochastic);
}
// A fit() with no epoch left to train still writes its checkpoint: a run of 0 epochs saves its
// initial state, from which a resume is the run that never stopped; a resume at its last epoch
// saves where it stands (to a new path too).
TEST(Trainer, AFitWithNoEpochToTrainSavesWhereItStands) {
  const data::Dataset train = blobs(300, 4);
  nn::Sequential straight = model(7);
  optim::AdamW opt1(straight.parameters(), optim::AdamW::defaults());
  Trainer(straight, opt1, options(2)).fit(train);

  nn::Sequential initial = model(7);
  optim::AdamW opt2(initial.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(0);
  o.checkpoint_path = tmp("no_epoch.safetensors");
  std::filesystem::remove(o.checkpoint_path);
  EXPECT_TRUE(Trainer(initial, opt2, o).fit(train).history.empty());
  ASSERT_TRUE(std::filesystem::exists(o.checkpoint_path));

  nn::Sequential resumed = model(12345);  // everything from the file
  optim::AdamW opt3(resumed.parameters(), optim::AdamW::defaults());
  TrainerOptions again = options(2);
  again.checkpoint_path = tmp("no_epoch_after.safetensors");
  Trainer trainer(resumed, opt3, again);
  trainer.resume(o.checkpoint_path);
  EXPECT_EQ(trainer.state().epoch, 0);
  EXPECT_EQ(trainer.fit(train).history.size(), 2u);
  EXPECT_EQ(resumed.parameters().to_host(), straight.parameters().to_host());

  // Resumed at its last epoch, to another path: nothing to train, the state written there.
  nn::Sequential copy = model(99);
  optim::AdamW opt4(copy.parameters(), optim::AdamW::defaults());
  TrainerOptions copied = options(2);
  copied.checkpoint_path = tmp("no_epoch_copy.safetensors");
  std::filesystem::remove(copied.checkpoint_path);
  Trainer copier(copy, opt4, copied);
  copier.resume(again.checkpoint_path);
  EXPECT_TRUE(copier.fit(train).history.empty());
  nn::Sequential loaded = model(5);
  optim::AdamW opt5(loaded.parameters(), optim::AdamW::defaults());
  Trainer reader(loaded, opt5, options(2));
  reader.resume(copied.checkpoint_path);
  EXPECT_EQ(reader.state().epoch, 2);
  EXPECT_EQ(loaded.parameters().to_host(), straight.parameters().to_host());
  const std::vector<optim::NamedState> moments = opt5.state(), expected = opt1.state();
  ASSERT_EQ(moments.size(), expected.size());
  for (std::size_t k = 0; k < moments.size(); ++k)
    EXPECT_EQ(moments[k].arena->to_host(), expected[k].arena->to_host()) << moments[k].name;
}

// Note [16-bit compute copy]: the training forwards read the step's rounding of the master.
// Stochastic rounding changes the run and repeats it bit for bit (that nearest rounding from the
// copy is the model's own rounding: Precision16.TrainingForwardsReadTheAttachedParameterCopy).
TEST(Trainer, StochasticRoundingChangesTheRunAndRepeatsIt) {
  const data::Dataset train = blobs(300, 4);
  auto run = [&](Rounding rounding) {
    nn::Sequential m = model(7);
    m.set_precision(Precision::kBf16);
    m.set_rounding(rounding);
    optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
    Trainer(m, opt, options(2)).fit(train);
    return m.parameters().to_host();
  };
  const std::vector<float> nearest = run(Rounding::kNearestEven);
  const std::vector<float> stochastic = run(Rounding::kStochastic);
  EXPECT_NE(stochastic, nearest);
  EXPECT_EQ(run(Rounding::kStochastic), stochastic);
}
// A checkpoint written by a model set up by `written` and resumed into one set up by `resuming`
// is refused with `why`, and nothing is loaded.
void check_resume_refused(const std::function<void(nn::Sequential&)>& written,
                          const std::function<void(nn::Sequential&)>& resuming,
                          const std::string& name, const std::string& why) {
  const data::Dataset train = blobs(300, 4);
  nn::Sequential first = model(7);
  written(first);
  optim::AdamW opt(first.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.checkpoint_path = tmp(name + ".safetensors");
  Trainer(first, opt, o).fit(train);
  nn::Sequential second = model(7);
  resuming(second);
  optim::AdamW opt2(second.parameters(), optim::AdamW::defaults());
  Trainer resumed(second, opt2, options(3));
  const std::vector<float> before = second.parameters().to_host();
  const std::string error = testing::error_of([&] { resumed.resume(o.checkpoint_path); });
  EXPECT_NE(error.find(why), std::string::npos) << error;
  EXPECT_EQ(second.parameters().to_host(), before);  // nothing loaded
}

// Note [data spec on resume]: a run whose data is prepared otherwise than the checkpoint's (other
// feature columns, standardization added) is refused before anything is loaded; the same
// preparation with refitted statistics resumes.
TEST(Trainer, ResumeOnDataPreparedOtherwiseIsRefused) {
  const data::Dataset train = blobs(300, 4);
  DataSpec spec;
  spec.feature_columns = {"a", "b", "c", "d"};
  spec.mean = {0, 0, 0, 0};
  spec.stddev = {1, 1, 1, 1};
  nn::Sequential first = model(7);
  optim::AdamW opt(first.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.checkpoint_path = tmp("resume_data_spec.safetensors");
  o.checkpoint_metadata = {{kDataSpecKey, spec.to_json()}};
  Trainer(first, opt, o).fit(train);
  auto resume_with = [&](const DataSpec& now) {
    nn::Sequential second = model(8);
    optim::AdamW opt2(second.parameters(), optim::AdamW::defaults());
    TrainerOptions again = options(3);
    again.checkpoint_metadata = {{kDataSpecKey, now.to_json()}};
    Trainer resumed(second, opt2, again);
    const std::vector<float> before = second.parameters().to_host();
    const std::string error = testing::error_of([&] { resumed.resume(o.checkpoint_path); });
    if (error != "(no error)") {
      EXPECT_EQ(second.parameters().to_host(), before);  // nothing loaded
    }
    return error;
  };
  DataSpec reordered = spec;
  std::swap(reordered.feature_columns[0], reordered.feature_columns[1]);
  EXPECT_NE(resume_with(reordered).find("trained on data prepared otherwise - this run gives "
                                        "feature columns b, a, c, d where the checkpoint's were "
                                        "a, b, c, d; resume with the data"),
            std::string::npos);
  DataSpec raw = spec;
  raw.mean.clear();
  raw.stddev.clear();
  EXPECT_NE(resume_with(raw).find("features not standardized where the checkpoint's were"),
            std::string::npos);
  DataSpec refitted = spec;
  refitted.mean = {0.5F, 0, 0, 0};
  EXPECT_EQ(resume_with(refitted), "(no error)");
}

// A checkpoint continues in the precision it was written in: another is refused, naming both.
TEST(Trainer, ResumeInAnotherPrecisionIsRefused) {
  check_resume_refused([](nn::Sequential& m) { m.set_precision(Precision::kBf16); },
                       [](nn::Sequential&) {}, "resume_bf16_then_fp32",
                       "written by a run in bf16 and this run computes in fp32");
}
// ... and with the rounding it was written with.
TEST(Trainer, ResumeWithAnotherRoundingIsRefused) {
  check_resume_refused(
      [](nn::Sequential& m) {
        m.set_precision(Precision::kBf16);
        m.set_rounding(Rounding::kStochastic);
      },
      [](nn::Sequential& m) { m.set_precision(Precision::kBf16); },
      "resume_stochastic_then_nearest", "parameters round stochastic and this run's round nearest");
}
TEST(TrainerGpu, ResumeIsExact) {
  CUTRAIN_REQUIRE_GPU();
  check_resume(Device::cuda(0));
  check_resume(Device::cuda(0), Precision::kBf16);
  check_resume(Device::cuda(0), Precision::kBf16, Rounding::kStochastic);
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
  // A resume whose first batch is the epoch's shorter last one (12 rows, after 9 of 32) draws
  // the uninterrupted run's Dropout masks (Note [dropout stream]: they had a stride of 12 rows).
  {
    auto [b, opt] = fresh(7);
    TrainerOptions before_last = options(3);
    before_last.checkpoint_path = tmp("before_last.safetensors");
    Trainer tb(*b, *opt, before_last);
    auto stop = std::make_shared<AtBatch>();
    stop->actions.emplace_back(2, 9, [&] { tb.request_stop(); });
    tb.add_callback(stop);
    EXPECT_TRUE(tb.fit(train, &val).interrupted);
    auto [m, opt3] = fresh(12345);
    Trainer t(*m, *opt3, options(3));
    t.resume(before_last.checkpoint_path);
    EXPECT_EQ(t.state().batch, 9);
    expect_like_straight(t.fit(train, &val), *m, "stopped before the last batch");
  }

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

// Trains `before` epochs writing `metrics` and a checkpoint, lets `meanwhile` change the metrics
// file, then resumes a new trainer to `after` epochs on the same file; returns the file's text.
std::string resumed_metrics(const std::filesystem::path& dir, const std::string& metrics,
                            std::int64_t before, std::int64_t after,
                            const std::function<void()>& meanwhile) {
  const data::Dataset train = blobs(200, 4);
  nn::Sequential m = model(7);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(before);
  o.metrics_path = metrics;
  o.checkpoint_path = (dir / "ck.safetensors").string();
  Trainer(m, opt, o).fit(train);
  meanwhile();
  nn::Sequential again = model(7);
  optim::AdamW opt2(again.parameters(), optim::AdamW::defaults());
  TrainerOptions o2 = options(after);
  o2.metrics_path = metrics;
  Trainer resumed(again, opt2, o2);
  resumed.resume(o.checkpoint_path);
  resumed.fit(train);
  return testing::read_text(metrics);
}

// Note [metrics of a resumed run]: lines past the checkpoint's epochs (a run killed after its
// metrics line and before its checkpoint) and an unfinished last line are dropped before the
// resumed run appends: one line per epoch, its own.
TEST(Trainer, AResumedRunsMetricsContinueAfterItsCheckpoint) {
  for (const std::string ext : {"csv", "jsonl"}) {
    const std::filesystem::path dir = testing::fresh_dir("cutrain_trainer_test", "metrics_" + ext);
    const std::string metrics = (dir / ("m." + ext)).string();
    std::string two_epochs;
    const std::string text = resumed_metrics(dir, metrics, 2, 3, [&] {
      two_epochs = testing::read_text(metrics);
      std::ofstream(metrics, std::ios::app)
          << (ext == "csv" ? "3,0.5,9,nan,nan,1,0,0.1,100,1\n4,0.5,9,na"
                           : "{\"epoch\": 3, \"lr\": 0.5}\n{\"epo");
    });
    ASSERT_TRUE(text.starts_with(two_epochs)) << text;
    const std::string third = text.substr(two_epochs.size());
    EXPECT_EQ(std::count(third.begin(), third.end(), '\n'), 1) << third;  // epoch 3, once
    EXPECT_TRUE(third.starts_with(ext == "csv" ? "3," : "{\"epoch\":3,")) << third;
    EXPECT_EQ(third.find("0.5,9"), std::string::npos) << third;  // not the lost run's
    EXPECT_EQ(third.find("\"lr\":0.5"), std::string::npos) << third;
  }
}

// ... and a metrics file emptied meanwhile starts again with its header.
TEST(Trainer, AResumedRunRewritesTheHeaderOfAnEmptiedMetricsFile) {
  const std::filesystem::path dir = testing::fresh_dir("cutrain_trainer_test", "metrics_empty");
  const std::string metrics = (dir / "m.csv").string();
  const std::string text =
      resumed_metrics(dir, metrics, 1, 2, [&] { std::ofstream(metrics, std::ios::trunc).close(); });
  EXPECT_TRUE(text.starts_with("epoch,lr,train_loss,")) << text;
  EXPECT_NE(text.find("\n2,"), std::string::npos) << text;
}

}  // namespace
}  // namespace cutrain::train
