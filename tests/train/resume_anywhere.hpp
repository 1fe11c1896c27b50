#pragma once
// Note [mid-epoch resume], across combinations: a run stopped at a random batch (request_stop,
// with or without periodic checkpoints), resumed by a new model, optimizer and trainer - and, half
// the time, stopped and resumed once more - ends as the uninterrupted run does, bit for bit:
// weights, buffers, optimizer state, step counts, every epoch's figures, the early stop - whether
// each part streams its batches or keeps the data resident (Note [resident datasets]). Each
// configuration draws its model (MLP or CNN, BatchNorm, Dropout, a residual block), optimizer,
// precision and rounding, loss scaling, batch size, accumulation, last-batch policy, clipping,
// schedule, weight averaging, label smoothing, class weights, augmentation, validation with
// early stopping, and labels or regression targets from a seeded generator, so the set is the
// same on every run. (It found Note [dropout stream]'s resume at an epoch's shorter last batch.)
// With a communicator the same runs go over W ranks: tests/dist/dist_test.cpp.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cutrain/cutrain.hpp"
#include "support/blobs.hpp"
#include "support/temp_path.hpp"

namespace cutrain::train::resume_anywhere {

struct Config {
  std::mt19937 rng;
  int pick(int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); }
  bool cnn, residual, avgpool, batchnorm, regression, scaled, nesterov, amsgrad, centered;
  float dropout;
  int hidden, optimizer, schedule;
  Precision precision;
  Rounding rounding;
  TrainerOptions options;  // without checkpoints
  std::int64_t rows;
  bool validation;

  explicit Config(unsigned seed) : rng(seed) {
    cnn = pick(3) == 0;
    residual = cnn && pick(2) == 0;
    avgpool = pick(3) == 0;
    batchnorm = pick(2) == 0;
    regression = pick(4) == 0;
    dropout = pick(2) == 0 ? 0.2F : 0.0F;
    hidden = 8 * (1 + pick(3));
    optimizer = pick(5);
    nesterov = pick(2) == 0;
    amsgrad = pick(2) == 0;
    centered = pick(2) == 0;
    const Precision precisions[] = {Precision::kFp32, Precision::kBf16, Precision::kFp16};
    precision = precisions[pick(3)];
    rounding = is_half(precision) && pick(2) == 0 ? Rounding::kStochastic : Rounding::kNearestEven;
    scaled = pick(2) == 0;
    schedule = pick(4);
    rows = 150 + pick(100);
    validation = pick(2) == 0;
    TrainerOptions& o = options;
    o.batch_size = 16 + 8 * pick(4);
    o.accumulate_steps = 1 + pick(3);
    o.drop_last = pick(2) == 0;
    o.seed = 5;
    o.clip_norm = pick(2) == 0 ? 1.0F : 0.0F;
    o.shuffle = pick(4) != 0;
    o.progress = false;
    o.ema_decay = pick(2) == 0 ? 0.9F : 0.0F;
    o.schedule_per_iteration = pick(4) != 0;
    o.epochs = 2 + pick(3);
    if (!regression) {
      o.label_smoothing = pick(2) == 0 ? 0.1F : 0.0F;
      if (pick(2) == 0) o.class_weights = {1.0F, 2.0F, 0.5F};
      if (pick(2) == 0) o.monitor = TrainerOptions::Monitor::kValAccuracy;
    }
    if (cnn) {
      o.augment.image = Shape{1, 6, 6};
      o.augment.shift = pick(3);
      o.augment.flip = pick(2) == 0;
    }
    if (validation) o.patience = pick(3);
  }

  std::string describe() const {
    const TrainerOptions& o = options;
    auto flag = [](const char* name, bool on) {
      return on ? std::string(" ") + name : std::string();
    };
    return std::string(cnn ? "cnn" : "mlp") + flag("residual", residual) +
           flag("batchnorm", batchnorm) + flag("dropout", dropout > 0) +
           flag("regression", regression) + " optimizer " + std::to_string(optimizer) + " " +
           precision_name(precision) + " " + rounding_name(rounding) + flag("loss-scaled", scaled) +
           " schedule " + std::to_string(schedule) +
           (o.schedule_per_iteration ? "" : " per epoch") + " batch " +
           std::to_string(o.batch_size) + " accumulate " + std::to_string(o.accumulate_steps) +
           flag("drop-last", o.drop_last) + flag("clip", o.clip_norm > 0) +
           flag("ema", o.ema_decay > 0) + flag("validation", validation) + " patience " +
           std::to_string(o.patience) + " epochs " + std::to_string(o.epochs) + " rows " +
           std::to_string(rows);
  }

  nn::Sequential model(std::uint64_t seed) const {
    nn::Sequential m(cnn ? 36 : 8);
    const std::int64_t outputs = regression ? 2 : 3;
    if (cnn) {
      m.emplace<nn::Unflatten>(1, Shape{1, 6, 6}).emplace<nn::Conv2d>(1, 4, 3, 1, 1);
      if (batchnorm) m.emplace<nn::BatchNorm2d>(4);
      m.emplace<nn::Activation>(nn::Activation::Kind::kRelu);
      if (residual) {
        auto block = std::make_unique<nn::Residual>();
        block->emplace<nn::Conv2d>(4, 4, 3, 1, 1);
        if (batchnorm) block->emplace<nn::BatchNorm2d>(4);
        block->emplace<nn::Activation>(nn::Activation::Kind::kRelu);
        if (dropout > 0) block->emplace<nn::Dropout>(dropout);
        m.add(std::move(block));
      }
      if (avgpool)
        m.emplace<nn::AvgPool2d>(2);
      else
        m.emplace<nn::MaxPool2d>(2);
      m.emplace<nn::Flatten>();
      if (dropout > 0) m.emplace<nn::Dropout>(dropout);
      m.emplace<nn::Linear>(36, outputs);
    } else {
      m.emplace<nn::Linear>(8, hidden);
      if (batchnorm) m.emplace<nn::BatchNorm1d>(hidden);
      m.emplace<nn::Activation>(nn::Activation::Kind::kGelu);
      if (dropout > 0) m.emplace<nn::Dropout>(dropout);
      m.emplace<nn::Linear>(hidden, outputs);
    }
    m.build(Device::cpu(), seed);
    m.set_precision(precision);
    m.set_rounding(rounding);
    return m;
  }

  std::unique_ptr<optim::Optimizer> optimizer_for(nn::Sequential& m) const {
    std::unique_ptr<optim::Optimizer> o;
    optim::AdamOptions adam = optim::AdamW::defaults();
    adam.amsgrad = amsgrad;
    switch (optimizer) {
      case 0:
        o = std::make_unique<optim::Sgd>(
            m.parameters(), optim::SgdOptions{.lr = 0.05F, .momentum = 0.9F, .nesterov = nesterov});
        break;
      case 1:
        o = std::make_unique<optim::Adam>(m.parameters(), adam);
        break;
      case 2:
        o = std::make_unique<optim::AdamW>(m.parameters(), adam);
        break;
      case 3:
        o = std::make_unique<optim::Rmsprop>(
            m.parameters(), optim::RmspropOptions{.momentum = 0.5F, .centered = centered});
        break;
      default:
        o = std::make_unique<optim::Adagrad>(m.parameters(), optim::AdagradOptions{});
    }
    // A small scale that grows often: growth and (with fp16) overflow both happen.
    if (scaled) o->enable_loss_scaling({.init_scale = 256.0F, .growth_interval = 5});
    return o;
  }

  TrainerOptions options_for(std::int64_t steps_per_epoch) const {
    TrainerOptions o = options;
    const std::int64_t total =
        std::max<std::int64_t>(4, (o.schedule_per_iteration ? steps_per_epoch : 1) * o.epochs);
    switch (schedule) {
      case 0:
        o.schedule = std::make_shared<optim::CosineLr>(0.01, total);
        break;
      case 1:
        o.schedule =
            std::make_shared<optim::WarmupLr>(std::make_unique<optim::OneCycleLr>(0.01, total), 3);
        break;
      case 2:
        o.schedule = std::make_shared<optim::ReduceLrOnPlateau>(0.01, 0.5, 0);
        break;
      default:
        o.schedule = std::make_shared<optim::StepLr>(0.01, 3, 0.7);
    }
    return o;
  }

  data::Dataset data() const {
    data::Dataset d = testing::blobs(rows, cnn ? 36 : 8, 3, 1.5F, 0.9F, 11);
    if (!regression) return d;
    d.targets.resize(static_cast<std::size_t>(d.rows * 2));
    for (std::int64_t i = 0; i < d.rows; ++i) {
      float a = static_cast<float>(d.labels[static_cast<std::size_t>(i)]), b = 0;
      for (std::int64_t f = 0; f < d.features; ++f) {
        const float v = d.x[static_cast<std::size_t>(i * d.features + f)];
        a += 0.1F * v;
        b += static_cast<float>(f % 3 - 1) * v;
      }
      d.targets[static_cast<std::size_t>(2 * i)] = a;
      d.targets[static_cast<std::size_t>(2 * i + 1)] = b;
    }
    d.target_width = 2;
    d.labels.clear();
    d.classes = 0;
    return d;
  }
};

struct StopAt : Callback {
  Trainer* trainer = nullptr;
  std::int64_t epoch = 0, batch = 0;
  void on_batch_end(std::int64_t e, std::int64_t b) override {
    if (e == epoch && b == batch) trainer->request_stop();
  }
};

// NaN equals NaN (a regression run's accuracy).
inline bool same_value(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

// Configurations [first, first + count): each trained straight, then in legs - stopped at a
// random batch, resumed by new objects, half the time stopped and resumed again - and compared.
// With `comm` (W ranks, every rank calling): the runs are data-parallel, synchronized BatchNorm
// and gradient buckets drawn too, and every rank's weights must also be rank 0's. Returns how
// many configurations were resumed at least once. `tag` names its checkpoints (one per run of
// the suite: builds testing side by side; the same on every rank).
inline int check_resume_anywhere(unsigned first, unsigned count, const std::string& tag,
                                 dist::Communicator* comm = nullptr) {
  const int world = comm != nullptr ? comm->size() : 1;
  const bool lead = comm == nullptr || comm->rank() == 0;
  int compared = 0;
  for (unsigned seed = first; seed < first + count; ++seed) {
    Config c(seed);
    const data::Dataset all = c.data();
    data::Dataset train = all, val;
    if (c.validation) std::tie(train, val) = data::split(all, 0.2, 3);
    const data::Dataset* validation = c.validation ? &val : nullptr;
    const std::int64_t b = c.options.batch_size;
    // Rank r's rows: r, r + W, ... (DistributedSampler's deal); rank 0 has the most.
    auto rank_rows = [&](int r) { return (train.rows - r + world - 1) / world; };
    const std::int64_t rows = rank_rows(0);
    const std::int64_t batches =
        c.options.drop_last ? rank_rows(world - 1) / b : (rows + b - 1) / b;
    // One-row last batches cannot be batch-normalized (refused by fit, tested elsewhere).
    bool one_row = false;
    for (int r = 0; r < world; ++r) one_row = one_row || rank_rows(r) % b == 1;
    if (batches == 0 || (!c.options.drop_last && one_row && c.batchnorm)) continue;
    const std::int64_t steps =
        (batches + c.options.accumulate_steps - 1) / c.options.accumulate_steps;
    const bool sync = comm != nullptr && c.batchnorm && seed % 2 == 0;
    auto options = [&] {  // each trainer its own schedule: a plateau's has state
      TrainerOptions o = c.options_for(steps);
      o.communicator = comm;
      o.sync_batchnorm = sync;
      return o;
    };
    SCOPED_TRACE("configuration " + std::to_string(seed) + ": " + c.describe() +
                 (sync ? " sync-batchnorm" : ""));

    nn::Sequential straight = c.model(7);
    auto straight_opt = c.optimizer_for(straight);
    TrainerOptions straight_options = options();
    // Its last checkpoint, resumed below (one process: the file is rank 0's).
    const std::string end = testing::temp_path("cutrain_resume_anywhere", tag + "_end");
    if (comm == nullptr) straight_options.checkpoint_path = end;
    const FitResult full =
        Trainer(straight, *straight_opt, straight_options).fit(train, validation);

    std::vector<EpochMetrics> history;
    std::unique_ptr<nn::Sequential> model;
    std::unique_ptr<optim::Optimizer> opt;
    std::string from;
    FitResult last;
    bool done = false;
    int legs = 0;
    std::string legs_taken;
    for (int leg = 0; leg < 3 && !done; ++leg, ++legs) {
      model = std::make_unique<nn::Sequential>(c.model(leg == 0 ? 7 : 1000 + leg));
      opt = c.optimizer_for(*model);
      TrainerOptions o = options();
      o.resident_data = c.pick(2) == 0;  // the same batches streamed or gathered in place
      if (comm != nullptr) o.bucket_bytes = c.pick(3) == 0 ? 0 : (c.pick(2) == 0 ? 128 : 4096);
      const bool stops = leg == 0 || (leg == 1 && c.pick(2) == 0);
      if (stops) {
        o.checkpoint_path =
            testing::temp_path("cutrain_resume_anywhere", tag + "_" + std::to_string(leg));
        if (lead) std::filesystem::remove(o.checkpoint_path);
        o.checkpoint_every = c.pick(3) == 0 ? 0 : 1 + c.pick(5);
      }
      if (comm != nullptr) comm->barrier();  // rank 0's file is written and old ones gone
      Trainer t(*model, *opt, o);
      if (!from.empty()) t.resume(from);
      auto stop = std::make_shared<StopAt>();
      stop->trainer = &t;
      stop->epoch = t.state().epoch + 1 + c.pick(static_cast<int>(o.epochs - t.state().epoch));
      stop->batch = 1 + c.pick(static_cast<int>(batches));
      if (stop->epoch == t.state().epoch + 1 && stop->batch <= t.state().batch)
        stop->batch = t.state().batch + 1;
      if (stops) t.add_callback(stop);
      legs_taken += "; leg " + std::to_string(leg) + " from epoch " +
                    std::to_string(t.state().epoch) + " batch " + std::to_string(t.state().batch) +
                    (o.resident_data ? " resident" : "") +
                    (o.bucket_bytes > 0 ? " buckets " + std::to_string(o.bucket_bytes) : "") +
                    (stops ? ", stop after batch " + std::to_string(stop->batch) + " of epoch " +
                                 std::to_string(stop->epoch) + ", checkpoint_every " +
                                 std::to_string(o.checkpoint_every)
                           : std::string());
      last = t.fit(train, validation);
      if (comm != nullptr) comm->barrier();
      history.insert(history.end(), last.history.begin(), last.history.end());
      done = !last.interrupted;
      from = o.checkpoint_path;
    }
    compared += legs > 1 ? 1 : 0;
    SCOPED_TRACE(legs_taken);
    if (comm != nullptr) {  // the ranks' weights are one model's
      const std::vector<float> mine = model->parameters().to_host();
      const std::vector<float> every = comm->allgather(mine);
      for (int r = 1; r < world; ++r)
        EXPECT_TRUE(std::equal(mine.begin(), mine.end(),
                               every.begin() + static_cast<std::ptrdiff_t>(r * mine.size())))
            << "rank " << r << "'s weights";
    }
    EXPECT_EQ(history.size(), full.history.size());
    for (std::size_t e = 0; e < std::min(history.size(), full.history.size()); ++e) {
      const EpochMetrics &got = history[e], &want = full.history[e];
      EXPECT_EQ(got.epoch, want.epoch);
      EXPECT_TRUE(same_value(got.train_loss, want.train_loss)) << "epoch " << e + 1;
      EXPECT_TRUE(same_value(got.grad_norm, want.grad_norm)) << "epoch " << e + 1;
      EXPECT_TRUE(same_value(got.val_loss, want.val_loss)) << "epoch " << e + 1;
      EXPECT_TRUE(same_value(got.val_accuracy, want.val_accuracy)) << "epoch " << e + 1;
      EXPECT_EQ(got.lr, want.lr) << "epoch " << e + 1;
      EXPECT_EQ(got.skipped_steps, want.skipped_steps) << "epoch " << e + 1;
      EXPECT_EQ(got.loss_scale, want.loss_scale) << "epoch " << e + 1;
    }
    EXPECT_EQ(last.stopped_early, full.stopped_early);
    EXPECT_EQ(last.best_epoch, full.best_epoch);
    EXPECT_EQ(model->parameters().to_host(), straight.parameters().to_host());
    EXPECT_EQ(model->buffers().to_host(), straight.buffers().to_host());
    EXPECT_EQ(opt->applied_steps(), straight_opt->applied_steps());
    EXPECT_EQ(opt->skipped_steps(), straight_opt->skipped_steps());
    const auto got_state = opt->state(), want_state = straight_opt->state();
    EXPECT_EQ(got_state.size(), want_state.size());
    for (std::size_t i = 0; i < std::min(got_state.size(), want_state.size()); ++i)
      EXPECT_EQ(got_state[i].arena->to_host(), want_state[i].arena->to_host()) << got_state[i].name;
    // The uninterrupted run's last checkpoint resumed (a job requeued after it ended, or killed
    // while writing its results): nothing is left to train, and it ends as that run did - an
    // early-stopped run stays stopped, its best weights restored (Note [resume after an early
    // stop]).
    if (comm == nullptr) {
      nn::Sequential again = c.model(999);
      auto again_opt = c.optimizer_for(again);
      Trainer t(again, *again_opt, options());
      t.resume(end);
      const FitResult r = t.fit(train, validation);
      EXPECT_TRUE(r.history.empty()) << "a finished run trained " << r.history.size() << " more";
      EXPECT_EQ(r.stopped_early, full.stopped_early);
      EXPECT_EQ(r.best_epoch, full.best_epoch);
      EXPECT_EQ(again.parameters().to_host(), straight.parameters().to_host());
      EXPECT_EQ(again.buffers().to_host(), straight.buffers().to_host());
    }
    // The first configuration that parts is the one to read (every rank stops at the same one:
    // the comparisons hold or fail alike on each, the weights being the same).
    if (::testing::Test::HasFailure()) break;
  }
  return compared;
}

}  // namespace cutrain::train::resume_anywhere
