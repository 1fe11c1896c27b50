// Note [the step as one CUDA graph] (src/train/step_graph.hpp): what prevents a graph is named
// (and refused with cuda_graph = on); on a GPU a run whose full batches replay one captured step
// is the eager run bit for bit - weights, buffers, optimizer state, counters and every epoch
// figure - with dropout, BatchNorm, clipping, a per-iteration schedule, loss scaling whose first
// steps overflow and are skipped, weight averaging, augmentation, validation between epochs,
// gradient accumulation (a graph per position in the step) and a shorter last batch.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "src/train/step_graph.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

TEST(StepGraph, SaysWhatPreventsAGraph) {
  nn::Sequential m = model(7);
  TrainerOptions o = options(1);
  EXPECT_NE(cuda_graph_blocker(m, o).find("on the CPU"), std::string::npos);
  o.accumulate_steps = 2;  // captured (a graph per position): the CPU is what remains
  o.ema_decay = 0.99F;
  EXPECT_EQ(cuda_graph_blocker(m, o), "the model is on the CPU (CUDA graphs are a GPU feature)");
  EXPECT_NE(cuda_graph_blocker(m, o).find("on the CPU"), std::string::npos);

  // on: refused before the first step, naming why; auto: eager, saying why.
  const data::Dataset train = blobs(100, 4);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  TrainerOptions on = options(1);
  on.cuda_graph = TrainerOptions::CudaGraph::kOn;
  const std::vector<float> before = m.parameters().to_host();
  const std::string why = testing::error_of([&] { Trainer(m, opt, on).fit(train); });
  EXPECT_NE(why.find("cuda_graph = on, but the model is on the CPU"), std::string::npos) << why;
  EXPECT_EQ(m.parameters().to_host(), before);
  const FitResult r = Trainer(m, opt, options(1)).fit(train);
  EXPECT_EQ(r.step_path, "eager: the model is on the CPU (CUDA graphs are a GPU feature)");
  EXPECT_EQ(r.graph_steps, 0);
}

// Which batches replay which graph: under accumulation of 4 batches of 32, an epoch of 10 (the
// last 12 rows) is first, middle, middle, last twice, then first and the short batch - eager,
// as is the last of a group shorter than 4 batches.
TEST(StepGraph, ABatchReplaysTheGraphOfItsPlaceInTheStep) {
  using P = detail::StepGraph::Position;
  const auto at = [](std::int64_t k, std::int64_t per_epoch, std::int64_t accumulate,
                     std::int64_t rows, std::int64_t rows_before) {
    return detail::graph_position(k % accumulate == 0,
                                  (k + 1) % accumulate == 0 || k + 1 == per_epoch, rows,
                                  rows_before, 32, accumulate);
  };
  for (std::int64_t k = 0; k < 9; ++k)  // one batch a step: every full batch the whole step
    EXPECT_EQ(at(k, 10, 1, 32, 0), P::kWhole);
  EXPECT_EQ(at(9, 10, 1, 12, 0), std::nullopt);  // the short batch
  const std::optional<P> four[] = {P::kFirst,  P::kMiddle, P::kMiddle, P::kLast,  P::kFirst,
                                   P::kMiddle, P::kMiddle, P::kLast,   P::kFirst, std::nullopt};
  for (std::int64_t k = 0; k < 10; ++k)
    EXPECT_EQ(at(k, 10, 4, k == 9 ? 12 : 32, 32 * (k % 4)), four[k]) << "batch " << k;
  // 10 full batches (drop_last of 332 rows): the last group's 2 batches end eagerly - its mean
  // divides by 64, not the captured 128; a group of one full batch is a whole step.
  EXPECT_EQ(at(8, 10, 4, 32, 0), P::kFirst);
  EXPECT_EQ(at(9, 10, 4, 32, 32), std::nullopt);
  EXPECT_EQ(at(8, 9, 4, 32, 0), P::kWhole);
}

struct TrainedRun {
  std::vector<float> params, buffers;
  std::vector<std::vector<float>> states;
  std::vector<EpochMetrics> history;
  std::int64_t applied = 0, skipped = 0, issued = 0, ema_updates = 0;
  std::uint64_t forwards = 0, training_forwards = 0;
  FitResult fit;
};

// overflow: no BatchNorm (which would absorb the inputs' scale), inputs of size ~1000 and
// S = 2^127, so the first scaled gradients overflow and those steps are skipped until S fits;
// otherwise the fixture's model (BatchNorm and Dropout) with S from 2^16, growing every 8 steps,
// and an exponential moving average of the weights (the one compared). `accumulate` batches make
// a step: with 4, an epoch's 10 batches are groups of 4, 4 and 2 (a full one and the short one).
struct RunConfig {
  bool overflow = false;
  std::int64_t accumulate = 1;
  const char* name = "";
};
constexpr RunConfig kRuns[] = {{false, 1, "BatchNorm"},
                               {true, 1, "overflowing steps"},
                               {false, 4, "BatchNorm, 4 batches a step"}};

TrainedRun train_run(Device device, TrainerOptions::CudaGraph mode, const RunConfig& config) {
  const bool overflow = config.overflow;
  data::Dataset train = blobs(300, 4), val = blobs(100, 5);  // 9 batches of 32, then 12 rows
  nn::Sequential m(8);
  if (overflow) {
    for (float& x : train.x) x *= 1000.0F;
    m.emplace<nn::Linear>(8, 32).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    m.emplace<nn::Dropout>(0.1F).emplace<nn::Linear>(32, 3);
    m.build(device, 7);
  } else {
    m = model(7, device);
  }
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  opt.enable_loss_scaling(
      {.init_scale = std::ldexp(1.0F, overflow ? 127 : 16), .growth_interval = 8});
  TrainerOptions o = options(3);  // clip_norm 1, cosine lr per iteration
  o.cuda_graph = mode;
  o.accumulate_steps = config.accumulate;
  if (!overflow) {
    o.ema_decay = 0.9F;
    // Note [augmentation on the device]: its draws follow the epoch and slot in device memory.
    o.augment = {.image = {2, 2, 2}, .shift = 1, .flip = true};
  }
  TrainedRun r;
  Trainer trainer(m, opt, o);
  r.fit = trainer.fit(train, &val);
  r.ema_updates = trainer.state().ema_updates;
  if (!overflow) trainer.apply_ema();  // the averaged weights are what is compared
  r.params = m.parameters().to_host();
  r.buffers = m.buffers().to_host();
  for (const optim::NamedState& s : opt.state()) r.states.push_back(s.arena->to_host());
  r.history = r.fit.history;
  r.applied = opt.applied_steps();
  r.skipped = opt.skipped_steps();
  r.issued = opt.issued_steps();
  r.forwards = m.forward_count();
  r.training_forwards = m.training_forward_count();
  return r;
}

// Equal, or both NaN (an epoch whose steps were all skipped has no mean loss or norm).
void expect_same(double a, double b, std::size_t epoch) {
  if (std::isnan(a) && std::isnan(b)) return;
  EXPECT_EQ(a, b) << "epoch " << epoch;
}

void expect_same_run(const TrainedRun& a, const TrainedRun& b) {
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.buffers, b.buffers);
  EXPECT_EQ(a.states, b.states);
  EXPECT_EQ(a.applied, b.applied);
  EXPECT_EQ(a.skipped, b.skipped);
  EXPECT_EQ(a.issued, b.issued);
  EXPECT_EQ(a.ema_updates, b.ema_updates);
  EXPECT_EQ(a.forwards, b.forwards);
  EXPECT_EQ(a.training_forwards, b.training_forwards);
  ASSERT_EQ(a.history.size(), b.history.size());
  for (std::size_t e = 0; e < a.history.size(); ++e) {
    expect_same(a.history[e].train_loss, b.history[e].train_loss, e + 1);
    expect_same(a.history[e].grad_norm, b.history[e].grad_norm, e + 1);
    expect_same(a.history[e].val_loss, b.history[e].val_loss, e + 1);
    EXPECT_EQ(a.history[e].skipped_steps, b.history[e].skipped_steps) << "epoch " << e + 1;
    expect_same(a.history[e].loss_scale, b.history[e].loss_scale, e + 1);
    expect_same(a.history[e].lr, b.history[e].lr, e + 1);
  }
}

// The CPU runs eagerly either way: this checks the runs' set-up (one skips steps; both train).
TEST(StepGraph, TheComparedRunsSkipAndTrain) {
  for (const RunConfig& config : kRuns) {
    SCOPED_TRACE(config.name);
    const bool overflow = config.overflow;
    const TrainedRun eager = train_run(Device::cpu(), TrainerOptions::CudaGraph::kOff, config);
    EXPECT_EQ(eager.skipped >= 1, overflow);
    EXPECT_EQ(eager.applied + eager.skipped, 3 * (config.accumulate == 1 ? 10 : 3));
    EXPECT_GT(eager.applied, config.accumulate == 1 ? 15 : 8);
    EXPECT_EQ(eager.training_forwards, 3 * 10);
    EXPECT_TRUE(std::isfinite(eager.history.back().train_loss));
    if (!overflow) {
      EXPECT_LT(eager.history.back().train_loss, eager.history.front().train_loss);
    }
    EXPECT_EQ(eager.fit.step_path,
              "eager: the model is on the CPU (CUDA graphs are a GPU feature)");
    expect_same_run(eager, train_run(Device::cpu(), TrainerOptions::CudaGraph::kAuto, config));
  }
}

TEST(StepGraphGpu, GraphIsTheEagerRun) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  for (const RunConfig& config : kRuns) {
    SCOPED_TRACE(config.name);
    const TrainedRun eager = train_run(gpu, TrainerOptions::CudaGraph::kOff, config);
    const TrainedRun graphed = train_run(gpu, TrainerOptions::CudaGraph::kOn, config);
    EXPECT_EQ(eager.fit.step_path, "eager: cuda_graph = off");
    EXPECT_EQ(eager.fit.graph_steps, 0);
    EXPECT_EQ(graphed.fit.step_path, "graph");
    if (config.accumulate == 1) {
      // 3 epochs of 9 full batches and a short one; the first 2 steps warm up eagerly.
      EXPECT_EQ(graphed.fit.graph_steps, 3 * 9 - 2);
    } else {
      // Batches 0-3 and 4-7 of an epoch are first, middle, middle, last; 8 (first) and the short
      // 9 a group of two, whose end runs eagerly. Each position runs twice eagerly first: epoch
      // 1 replays batches 5, 6 (middle) and 8 (first); epochs 2 and 3 every full batch.
      EXPECT_EQ(graphed.fit.graph_steps, 3 + 9 + 9);
    }
    EXPECT_GT(graphed.fit.graph_nodes, 5);
    EXPECT_EQ(graphed.skipped >= 1, config.overflow);
    expect_same_run(eager, graphed);
  }
}

}  // namespace
}  // namespace cutrain::train
