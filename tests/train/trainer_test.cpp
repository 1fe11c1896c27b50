// The trainer: it learns, predicts, validates without changing training, stops early restoring
// the best epoch, fires callbacks in order, writes metrics files that parse, and rejects
// mismatched data (resuming: resume_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
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
#include "src/io/file_lock.hpp"
#include "support/blobs.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "support/temp_path.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

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

// A classifier's predictions are its logits: their argmax per row gives evaluate()'s accuracy.
void check_predict(Device device) {
  const data::Dataset train = blobs(300, 11), test = blobs(120, 12);
  nn::Sequential m = model(3, device);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  Trainer t(m, opt, options(2));
  t.fit(train);
  const std::vector<float> logits = t.predict(test);
  ASSERT_EQ(logits.size(), static_cast<std::size_t>(test.rows * 3));
  std::int64_t correct = 0;
  for (std::int64_t r = 0; r < test.rows; ++r) {
    const auto row = logits.begin() + r * 3;
    correct += std::max_element(row, row + 3) - row == test.labels[static_cast<std::size_t>(r)];
  }
  const EvalResult e = t.evaluate(test);
  EXPECT_DOUBLE_EQ(static_cast<double>(correct) / static_cast<double>(test.rows), e.accuracy);
  EXPECT_GT(e.accuracy, 0.9);
}

TEST(Trainer, PredictedLogitsGiveTheEvaluatedAccuracy) {
  check_predict(Device::cpu());
}

TEST(TrainerGpu, PredictedLogitsGiveTheEvaluatedAccuracy) {
  CUTRAIN_REQUIRE_GPU();
  check_predict(Device::cuda(0));
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
            "samples_per_s,loss_scale");
  int rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 9);
    EXPECT_EQ(line.substr(line.rfind(',') + 1), "1");  // no loss scaling: S = 1
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
  // The run that ended after its 2 epochs without stopping early was given its best epoch's
  // weights back too (restore_best does not wait for the patience to run out).
  EXPECT_EQ(m2.parameters().to_host(), rec->params.at(1));
}

// Note [resume after an early stop]: the last checkpoint of a run that stopped early resumes into
// the stopped run - no epoch trained, the best weights restored - not into more training past
// its stop (a job requeued after it was killed while writing its results); a larger patience
// continues it.
TEST(Trainer, AnEarlyStoppedRunResumedStaysStopped) {
  const data::Dataset train = blobs(300, 5), val = blobs(90, 6);
  auto run = [&](std::int64_t patience, const std::string& resume_from,
                 nn::Sequential& m) -> FitResult {
    optim::Sgd opt(m.parameters(), {.lr = 0.05F, .momentum = 0.9F});
    TrainerOptions o = options(10);
    o.schedule = nullptr;
    o.patience = patience;
    o.min_delta = 1e9;  // no later epoch counts as an improvement
    o.checkpoint_path = resume_from.empty() ? tmp("stopped.safetensors") : "";
    Trainer t(m, opt, o);
    if (!resume_from.empty()) t.resume(resume_from);
    return t.fit(train, &val);
  };
  nn::Sequential straight = model(8);
  const FitResult first = run(2, "", straight);
  ASSERT_TRUE(first.stopped_early);
  ASSERT_EQ(first.history.size(), 3u);

  nn::Sequential again = model(99);
  const FitResult resumed = run(2, tmp("stopped.safetensors"), again);
  EXPECT_TRUE(resumed.stopped_early);
  EXPECT_TRUE(resumed.history.empty());
  EXPECT_EQ(resumed.best_epoch, 1);
  EXPECT_EQ(again.parameters().to_host(), straight.parameters().to_host());  // epoch 1's

  nn::Sequential longer = model(99);
  const FitResult continued = run(3, tmp("stopped.safetensors"), longer);
  EXPECT_TRUE(continued.stopped_early);
  EXPECT_EQ(continued.history.size(), 1u);  // epoch 4, the third without improvement
  EXPECT_EQ(longer.parameters().to_host(), straight.parameters().to_host());
}

// restore_best at the end of a run whose patience never ran out: the best epoch's weights with
// it, the last epoch's without.
TEST(Trainer, RestoreBestAlsoWhenThePatienceNeverRunsOut) {
  const data::Dataset train = blobs(300, 5), val = blobs(90, 6);
  for (const bool restore : {true, false}) {
    nn::Sequential m = model(8);
    optim::Sgd opt(m.parameters(), {.lr = 0.05F, .momentum = 0.9F});
    TrainerOptions o = options(3);
    o.schedule = nullptr;
    o.patience = 100;
    o.min_delta = 1e9;  // only epoch 1 counts as an improvement
    o.restore_best = restore;
    Trainer t(m, opt, o);
    auto rec = std::make_shared<Recorder>();
    rec->m = &m;
    t.add_callback(rec);
    const FitResult r = t.fit(train, &val);
    EXPECT_FALSE(r.stopped_early);
    EXPECT_EQ(r.best_epoch, 1);
    ASSERT_NE(rec->params.at(1), rec->params.at(3));
    EXPECT_EQ(m.parameters().to_host(), rec->params.at(restore ? 1 : 3)) << restore;
  }
}

// monitor: the restored epoch is the first best of the watched figure in the run's own history
// - the lowest validation loss, or the highest validation accuracy - on overlapping blobs where
// both keep moving; a resumed run must watch what its checkpoint did.
TEST(Trainer, MonitorChoosesTheFigureTheBestEpochIsJudgedBy) {
  const data::Dataset train = testing::blobs(240, 8, 3, 0.8F, 1.0F, 41),
                      val = testing::blobs(150, 8, 3, 0.8F, 1.0F, 42);
  std::vector<std::int64_t> best_of;
  for (const auto monitor :
       {TrainerOptions::Monitor::kValLoss, TrainerOptions::Monitor::kValAccuracy}) {
    const bool by_accuracy = monitor == TrainerOptions::Monitor::kValAccuracy;
    nn::Sequential m = model(12);
    optim::Sgd opt(m.parameters(), {.lr = 0.05F, .momentum = 0.9F});
    TrainerOptions o = options(12);
    o.schedule = nullptr;
    o.patience = 100;  // never stops: the best is chosen over all 12 epochs
    o.monitor = monitor;
    Trainer t(m, opt, o);
    auto rec = std::make_shared<Recorder>();
    rec->m = &m;
    t.add_callback(rec);
    const FitResult r = t.fit(train, &val);
    std::int64_t want = 1;
    for (const EpochMetrics& e : r.history) {
      const EpochMetrics& best = r.history[static_cast<std::size_t>(want - 1)];
      if (by_accuracy ? e.val_accuracy > best.val_accuracy : e.val_loss < best.val_loss)
        want = e.epoch;
    }
    EXPECT_EQ(r.best_epoch, want) << by_accuracy;
    best_of.push_back(want);
    EXPECT_EQ(m.parameters().to_host(), rec->params.at(want)) << by_accuracy;
    EXPECT_EQ(t.state().monitor, by_accuracy ? "val_accuracy" : "val_loss");
  }
  ASSERT_EQ(best_of.size(), 2u);
  EXPECT_NE(best_of[0], best_of[1]) << "the two figures peak together: the test tells nothing";
  // Resuming with another monitor is refused.
  const std::string path = tmp("monitor.safetensors");
  nn::Sequential m = model(12);
  optim::Sgd opt(m.parameters(), {.lr = 0.05F});
  TrainerOptions o = options(1);
  o.patience = 3;
  o.checkpoint_path = path;
  Trainer(m, opt, o).fit(train, &val);
  o.epochs = 2;
  o.monitor = TrainerOptions::Monitor::kValAccuracy;
  Trainer resumed(m, opt, o);
  resumed.resume(path);
  const std::string e = testing::error_of([&] { resumed.fit(train, &val); });
  EXPECT_NE(e.find("early stopping monitored val_loss and this one monitors val_accuracy"),
            std::string::npos)
      << e;
}

// Note [one run per checkpoint]: a fit whose checkpoint another run is writing is refused before
// its first step; once that run has finished, the fit saves there and leaves no lock file.
TEST(Trainer, ACheckpointAnotherRunWritesIsRefused) {
  const data::Dataset train = blobs(90, 7);
  nn::Sequential m = model(9);
  optim::Adam opt(m.parameters(), {});
  TrainerOptions o = options(1);
  o.checkpoint_path = tmp("locked.safetensors");
  std::filesystem::remove(o.checkpoint_path);
  const std::vector<float> before = m.parameters().to_host();
  {
    const io::FileLock other(o.checkpoint_path, "another run's checkpoint");
    const std::string e = testing::error_of([&] { Trainer(m, opt, o).fit(train); });
    EXPECT_NE(e.find("checkpoint_path '" + o.checkpoint_path + "' is being written by another run"),
              std::string::npos)
        << e;
    EXPECT_EQ(m.parameters().to_host(), before);
    EXPECT_FALSE(std::filesystem::exists(o.checkpoint_path));
  }
  Trainer(m, opt, o).fit(train);
  EXPECT_TRUE(std::filesystem::exists(o.checkpoint_path));
  EXPECT_FALSE(std::filesystem::exists(io::FileLock::lock_path(o.checkpoint_path)));
}

// The metrics file takes the same lock: another run writing it keeps its lines.
TEST(Trainer, AMetricsFileAnotherRunWritesIsRefused) {
  const data::Dataset train = blobs(90, 7);
  nn::Sequential m = model(9);
  optim::Adam opt(m.parameters(), {});
  TrainerOptions o = options(1);
  o.metrics_path = tmp("locked_metrics.csv");
  std::ofstream(o.metrics_path) << "another run's lines\n";
  {
    const io::FileLock other(o.metrics_path, "another run's metrics");
    const std::string e = testing::error_of([&] { Trainer(m, opt, o).fit(train); });
    EXPECT_NE(e.find("metrics_path '" + o.metrics_path + "' is being written by another run"),
              std::string::npos)
        << e;
    EXPECT_EQ(testing::read_text(o.metrics_path), "another run's lines\n");
  }
  Trainer(m, opt, o).fit(train);
  EXPECT_TRUE(testing::read_text(o.metrics_path).starts_with("epoch,"));
  EXPECT_FALSE(std::filesystem::exists(io::FileLock::lock_path(o.metrics_path)));
}

TEST(Trainer, MetricsFormatIsNamedByTheFileName) {
  EXPECT_EQ(metrics_format("run/m.csv"), MetricsFormat::kCsv);
  EXPECT_EQ(metrics_format("m.jsonl"), MetricsFormat::kJsonLines);
  EXPECT_EQ(metrics_format("m.json"), MetricsFormat::kJsonLines);
  for (const char* other : {"m.txt", "m.csv.gz", "csv", "m.CSV", ""})
    EXPECT_EQ(metrics_format(other), MetricsFormat::kUnknown) << other;
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
  // A checkpoint path that cannot be written is refused before training, not after an epoch.
  bad = options(1);
  bad.checkpoint_path = tmp("missing_dir/ck.safetensors");
  EXPECT_NE(
      testing::error_of([&] { Trainer(m, opt, bad); }).find("must name a file in an existing"),
      std::string::npos);
  bad.checkpoint_path = testing::temp_path("cutrain_trainer_test", "");
  EXPECT_THROW(Trainer(m, opt, bad), Error);  // a directory
  // Early stopping without validation data would never stop: refused, not ignored.
  bad = options(1);
  bad.patience = 2;
  const std::string e = testing::error_of([&] { Trainer(m, opt, bad).fit(train); });
  EXPECT_NE(e.find("patience = 2 stops on the validation loss"), std::string::npos) << e;
  const data::Dataset none;
  EXPECT_NE(testing::error_of([&] { Trainer(m, opt, bad).fit(train, &none); }).find("patience"),
            std::string::npos);
  // A negative min_delta made a worse epoch an improvement; a negative log_every meant nothing.
  bad = options(1);
  bad.min_delta = -0.5;
  EXPECT_NE(testing::error_of([&] { Trainer(m, opt, bad); }).find("min_delta = -0.5 is invalid"),
            std::string::npos);
  bad = options(1);
  bad.log_every = -5;
  EXPECT_NE(testing::error_of([&] { Trainer(m, opt, bad); }).find("log_every = -5 is invalid"),
            std::string::npos);
  // drop_last with a batch larger than the data would train no step and report NaN losses.
  bad = options(1);
  bad.drop_last = true;
  bad.batch_size = 91;
  const std::vector<float> before = m.parameters().to_host();
  const std::string no_batch = testing::error_of([&] { Trainer(m, opt, bad).fit(train); });
  EXPECT_NE(no_batch.find("batch_size = 91 with drop_last leaves no full batch of the 90 training "
                          "rows"),
            std::string::npos)
      << no_batch;
  EXPECT_EQ(m.parameters().to_host(), before);
}

}  // namespace
}  // namespace cutrain::train
