// Data-parallel training under MPI (run by CTest as `mpirun -np 2 dist_test`): two ranks with
// batch B must end where one process with batch 2B ends (<= 1e-6 of each tensor's scale), the
// ranks' weights must be bit-identical, and a run resumed on two ranks from rank 0's
// checkpoint must end bit-identical to the uninterrupted run (a different world size: an error).
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cutrain/data.hpp"
#include "cutrain/dist/communicator.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "support/blobs.hpp"

namespace cutrain {
namespace {

data::Dataset blobs(std::int64_t rows) {
  return testing::blobs(rows, 6, 3, 1.5F, 0.7F, 3);
}

nn::Sequential model() {
  nn::Sequential m(6);
  m.emplace<nn::Linear>(6, 16).emplace<nn::Activation>(nn::Activation::Kind::kTanh);
  m.emplace<nn::Linear>(16, 3);
  m.build(Device::cpu(), 5);
  return m;
}

train::TrainerOptions options(std::int64_t batch, dist::Communicator* comm) {
  train::TrainerOptions o;
  o.epochs = 2;
  o.batch_size = batch;
  o.seed = 4;
  o.clip_norm = 2.0F;
  o.progress = false;
  o.communicator = comm;
  return o;
}

// One checkpoint path for both ranks (rank 0 writes it, every rank reads it): rank 0's pid,
// shared by a sum.
std::string shared_path(dist::Communicator& world, const std::string& stem) {
  const double token = world.allreduce_sum(world.rank() == 0 ? static_cast<double>(::getpid()) : 0);
  return ::testing::TempDir() + stem + std::to_string(static_cast<long long>(token)) +
         ".safetensors";
}

// `m` trained on two ranks with Adam (lr 0.01) from the checkpoint at `path` to options()'s
// epochs: what the uninterrupted run's model must equal.
nn::Sequential resumed_with_adam(nn::Sequential m, const std::string& path,
                                 const data::Dataset& train, dist::Communicator& world) {
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  train::Trainer t(m, opt, options(16, &world));
  t.resume(path);
  t.fit(train);
  return m;
}

TEST(Distributed, TwoRanksEqualOneProcessWithTheCombinedBatch) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);  // 384 = 2 ranks x 16 x 12 batches

  nn::Sequential ranked = model();
  optim::Sgd opt(ranked.parameters(), {.lr = 0.05F, .momentum = 0.9F, .nesterov = true});
  train::Trainer(ranked, opt, options(16, &world)).fit(train);

  nn::Sequential single = model();  // the reference, computed on every rank
  optim::Sgd ref(single.parameters(), {.lr = 0.05F, .momentum = 0.9F, .nesterov = true});
  train::Trainer(single, ref, options(32, nullptr)).fit(train);

  const auto got = ranked.parameters().to_host();
  const auto want = single.parameters().to_host();
  double scale = 0;
  for (const float v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-6 * scale) << "element " << i << " on rank " << world.rank();

  // Bit-identical across ranks: rank 1 compares with rank 0's broadcast weights.
  Arena mine = ranked.parameters().copy_to(Device::cpu());
  Arena rank0 = mine.copy_to(Device::cpu());
  world.broadcast(rank0, 0);
  EXPECT_EQ(rank0.to_host(), mine.to_host()) << "rank " << world.rank() << " diverged";
  EXPECT_EQ(opt.applied_steps(), 24);

  // Bucketed (Note [gradient buckets]: 64-byte buckets, so one per Linear, each an
  // MPI_Iallreduce started during backward): each element is the same a + b, so the weights
  // are bit-identical to the one-collective run.
  nn::Sequential bucketed = model();
  optim::Sgd bopt(bucketed.parameters(), {.lr = 0.05F, .momentum = 0.9F, .nesterov = true});
  train::TrainerOptions bo = options(16, &world);
  bo.bucket_bytes = 64;
  ASSERT_EQ(dist::plan_buckets(ranked.gradients().layout(), ranked.layer_parameters(), 16).size(),
            2U);
  train::Trainer(bucketed, bopt, bo).fit(train);
  EXPECT_EQ(bucketed.parameters().to_host(), ranked.parameters().to_host())
      << "rank " << world.rank();
}

// Note [replica rows]: with Dropout and the augmentation on, rank r's row j draws what the one
// process draws for row 2 j + r of its combined batch, so two ranks still end where one process
// with batch 32 ends. Before, each rank drew the one process's first rows' masks and shifts for
// its own rows (the same numbers on both ranks), and the runs parted.
TEST(Distributed, TwoRanksWithDropoutAndAugmentationEqualOneProcessWithTheCombinedBatch) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);
  auto noisy = [] {
    nn::Sequential m(6);
    m.emplace<nn::Linear>(6, 16).emplace<nn::Activation>(nn::Activation::Kind::kTanh);
    m.emplace<nn::Dropout>(0.5F).emplace<nn::Linear>(16, 3);
    m.build(Device::cpu(), 5);
    return m;
  };
  auto run = [&](std::int64_t batch, dist::Communicator* comm) {
    nn::Sequential m = noisy();
    optim::Adam opt(m.parameters(), {.lr = 0.01F});
    train::TrainerOptions o = options(batch, comm);
    o.augment = {.image = {1, 2, 3}, .shift = 1, .flip = true};  // the 6 features as a 2 x 3 image
    train::Trainer(m, opt, o).fit(train);
    return m.parameters().to_host();
  };
  const std::vector<float> got = run(16, &world), want = run(32, nullptr);
  double scale = 0;
  for (const float v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5 * scale) << "element " << i << " on rank " << world.rank();
}

// Note [gradient accumulation] across ranks: 2 ranks x batch 8 x 2 accumulated micro-batches
// step with the gradient of 32 samples, as one process with batch 32 does; the all-reduce runs
// once per step, also when buckets are asked for.
TEST(Distributed, AccumulatedStepsOnTwoRanksEqualOneProcessWithTheCombinedBatch) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);
  nn::Sequential single = model();
  optim::Sgd ref(single.parameters(), {.lr = 0.05F, .momentum = 0.9F});
  train::Trainer(single, ref, options(32, nullptr)).fit(train);
  const auto want = single.parameters().to_host();
  double scale = 0;
  for (const float v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (const std::size_t bucket_bytes : {std::size_t{0}, std::size_t{64}}) {
    nn::Sequential ranked = model();
    optim::Sgd opt(ranked.parameters(), {.lr = 0.05F, .momentum = 0.9F});
    train::TrainerOptions o = options(8, &world);
    o.accumulate_steps = 2;
    o.bucket_bytes = bucket_bytes;
    train::Trainer(ranked, opt, o).fit(train);
    EXPECT_EQ(opt.applied_steps(), 24);
    const auto got = ranked.parameters().to_host();
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 2e-6 * scale)
          << "element " << i << " on rank " << world.rank() << ", buckets " << bucket_bytes;
  }
}

TEST(Distributed, ResumeOnTheSameWorldSizeIsExact) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);
  const std::string path = shared_path(world, "cutrain_dist_resume_");
  auto adam = [](nn::Sequential& m) {
    return optim::AdamW(m.parameters(), {.lr = 0.01F, .weight_decay = 0.01F, .amsgrad = true});
  };

  nn::Sequential whole = model();
  optim::AdamW whole_opt = adam(whole);
  train::Trainer(whole, whole_opt, options(16, &world)).fit(train);  // 2 epochs

  {
    nn::Sequential first = model();
    optim::AdamW first_opt = adam(first);
    train::TrainerOptions o = options(16, &world);
    o.epochs = 1;
    o.checkpoint_path = path;  // written by rank 0 only
    train::Trainer(first, first_opt, o).fit(train);
  }
  world.barrier();  // rank 1 reads what rank 0 wrote
  nn::Sequential resumed = model();
  optim::AdamW resumed_opt = adam(resumed);
  train::Trainer t(resumed, resumed_opt, options(16, &world));
  t.resume(path);
  t.fit(train);
  EXPECT_EQ(resumed.parameters().to_host(), whole.parameters().to_host())
      << "rank " << world.rank();
  EXPECT_EQ(resumed_opt.applied_steps(), whole_opt.applied_steps());

  // The checkpoint remembers its 2 ranks; a single process must not resume it.
  nn::Sequential alone = model();
  optim::AdamW alone_opt = adam(alone);
  train::Trainer single(alone, alone_opt, options(32, nullptr));
  try {
    single.resume(path);
    ADD_FAILURE() << "a 2-rank checkpoint resumed in 1 process";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("written by a run on 2 rank(s), resumed on 1"),
              std::string::npos)
        << e.what();
  }
  world.barrier();
  if (world.rank() == 0) std::remove(path.c_str());
}

// Note [step losses of every rank]: a run resumed from a mid-epoch checkpoint reports the
// interrupted epoch's train loss exactly as the uninterrupted run did. Each rank's losses come
// from its own shard, so rank 0's alone would give a different mean.
TEST(Distributed, MidEpochResumeKeepsEveryRanksStepLosses) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);  // 12 batches an epoch on each rank
  const std::string path = shared_path(world, "cutrain_dist_mid_");
  const std::string mid = path + ".mid";

  struct CopyAt : train::Callback {
    std::string from, to;
    bool lead = false;
    void on_batch_end(std::int64_t epoch, std::int64_t batch) override {
      if (lead && epoch == 2 && batch == 4)  // the latest checkpoint: epoch 2, batch 3 (step 15)
        std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    }
  };
  nn::Sequential whole = model();
  optim::Adam whole_opt(whole.parameters(), {.lr = 0.01F});
  train::TrainerOptions o = options(16, &world);
  o.checkpoint_path = path;
  o.checkpoint_every = 15;
  train::Trainer straight(whole, whole_opt, o);
  auto copy = std::make_shared<CopyAt>();
  copy->from = path;
  copy->to = mid;
  copy->lead = world.rank() == 0;
  straight.add_callback(copy);
  const train::FitResult full = straight.fit(train);
  ASSERT_EQ(full.history.size(), 2U);
  world.barrier();  // rank 1 reads what rank 0 wrote

  nn::Sequential resumed = model();
  optim::Adam resumed_opt(resumed.parameters(), {.lr = 0.01F});
  train::Trainer t(resumed, resumed_opt, options(16, &world));
  t.resume(mid);
  ASSERT_EQ(t.state().batch, 3);
  ASSERT_EQ(t.state().epoch_losses.size(), 6U) << "one row of 3 losses per rank";
  const train::FitResult rest = t.fit(train);
  ASSERT_EQ(rest.history.size(), 1U);
  EXPECT_EQ(rest.history[0].train_loss, full.history[1].train_loss) << "rank " << world.rank();
  EXPECT_EQ(rest.history[0].grad_norm, full.history[1].grad_norm) << "rank " << world.rank();
  EXPECT_EQ(resumed.parameters().to_host(), whole.parameters().to_host())
      << "rank " << world.rank();
  world.barrier();
  if (world.rank() == 0) {
    std::remove(path.c_str());
    std::remove(mid.c_str());
  }
}

// Note [stop on a signal] with several ranks: a stop asked of one rank (a signal may reach the
// ranks at different steps) is agreed on at the next periodic checkpoint; every rank stops
// there, and the resumed run ends with the uninterrupted run's weights.
TEST(Distributed, StopIsAgreedAtTheNextPeriodicCheckpoint) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);  // 12 batches an epoch on each rank
  const std::string path = shared_path(world, "cutrain_dist_stop_");
  nn::Sequential whole = model();
  optim::Adam whole_opt(whole.parameters(), {.lr = 0.01F});
  train::Trainer(whole, whole_opt, options(16, &world)).fit(train);

  struct StopRankOne : train::Callback {
    train::Trainer* trainer = nullptr;
    bool mine = false;
    void on_batch_end(std::int64_t epoch, std::int64_t batch) override {
      if (mine && epoch == 2 && batch == 1) trainer->request_stop();
    }
  };
  nn::Sequential part = model();
  optim::Adam part_opt(part.parameters(), {.lr = 0.01F});
  train::TrainerOptions o = options(16, &world);
  o.checkpoint_path = path;
  o.checkpoint_every = 5;  // steps 15 and 20 fall at epoch 2's batches 3 and 8
  train::Trainer stopped(part, part_opt, o);
  auto stop = std::make_shared<StopRankOne>();
  stop->trainer = &stopped;
  stop->mine = world.rank() == 1;
  stopped.add_callback(stop);
  const train::FitResult r = stopped.fit(train);
  EXPECT_TRUE(r.interrupted) << "rank " << world.rank();
  EXPECT_EQ(stopped.state().epoch, 1) << "rank " << world.rank();
  EXPECT_EQ(stopped.state().batch, 3) << "rank " << world.rank();
  world.barrier();

  nn::Sequential resumed = resumed_with_adam(model(), path, train, world);
  EXPECT_EQ(resumed.parameters().to_host(), whole.parameters().to_host())
      << "rank " << world.rank();
  world.barrier();
  if (world.rank() == 0) std::remove(path.c_str());
}

// Note [running statistics of rank 0]: BatchNorm's running statistics follow each rank's own
// batches, so without care the ranks' copies drift apart - and a sharded evaluation mixes models,
// none of them the one rank 0 checkpoints and exports. With the statistics synchronized from rank
// 0 at each epoch's end: the ranks hold the same bits, the 2-rank evaluation is rank 0's model
// evaluated on the whole set, and a resumed run ends with the uninterrupted run's statistics.
TEST(Distributed, BatchNormStatisticsAreRankZerosOnEveryRank) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384), test = blobs(100);
  auto bn_model = [] {
    nn::Sequential m(6);
    m.emplace<nn::Linear>(6, 16).emplace<nn::BatchNorm1d>(16);
    m.emplace<nn::Activation>(nn::Activation::Kind::kTanh).emplace<nn::Linear>(16, 3);
    m.build(Device::cpu(), 5);
    return m;
  };
  const std::string path = shared_path(world, "cutrain_dist_bn_");
  nn::Sequential whole = bn_model();
  optim::Adam whole_opt(whole.parameters(), {.lr = 0.01F});
  train::Trainer trainer(whole, whole_opt, options(16, &world));
  trainer.fit(train);

  Arena mine = whole.buffers().copy_to(Device::cpu());
  Arena rank0 = mine.copy_to(Device::cpu());
  world.broadcast(rank0, 0);
  EXPECT_EQ(rank0.to_host(), mine.to_host()) << "rank " << world.rank() << "'s statistics drifted";

  // Each rank evaluates half of `test`; the sums over both are one model's: rank 0's, evaluated
  // here on the whole set in one process.
  const train::EvalResult sharded = trainer.evaluate(test);
  const train::EvalResult alone = train::evaluate(whole, test, {.batch_size = 16});
  EXPECT_EQ(sharded.accuracy, alone.accuracy) << "rank " << world.rank();
  // Each batch's mean loss is a float: other batches (16-row shards), other roundings.
  EXPECT_NEAR(sharded.loss, alone.loss, 1e-6 * std::fabs(alone.loss)) << "rank " << world.rank();

  {
    nn::Sequential first = bn_model();
    optim::Adam first_opt(first.parameters(), {.lr = 0.01F});
    train::TrainerOptions o = options(16, &world);
    o.epochs = 1;
    o.checkpoint_path = path;
    train::Trainer(first, first_opt, o).fit(train);
  }
  world.barrier();  // rank 1 reads what rank 0 wrote
  nn::Sequential resumed = resumed_with_adam(bn_model(), path, train, world);
  EXPECT_EQ(resumed.parameters().to_host(), whole.parameters().to_host())
      << "rank " << world.rank();
  EXPECT_EQ(resumed.buffers().to_host(), whole.buffers().to_host()) << "rank " << world.rank();
  world.barrier();
  if (world.rank() == 0) std::remove(path.c_str());
}

// Note [synchronized batch statistics]: with sync_batchnorm, a network of BatchNorm2d and
// BatchNorm1d layers on two ranks ends where one process with the combined batch ends - weights
// and running statistics - as a network without BatchNorm does; with each rank's own statistics
// (DDP's default) it does not.
TEST(Distributed, SynchronizedBatchNormEqualsOneProcessWithTheCombinedBatch) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const data::Dataset train = blobs(384);
  auto run = [&](std::int64_t batch, dist::Communicator* comm, bool sync) {
    // The 6 features as a 1 x 2 x 3 image. No bias before a BatchNorm (as is usual): its
    // gradient is 0 but for rounding, which Adam would scale up to steps of lr either way.
    nn::Sequential m(6);
    m.emplace<nn::Unflatten>(1, Shape{1, 2, 3}).emplace<nn::Conv2d>(1, 4, 3, 1, 1, 1, false);
    m.emplace<nn::BatchNorm2d>(4).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    m.emplace<nn::Flatten>().emplace<nn::Linear>(24, 8, false).emplace<nn::BatchNorm1d>(8);
    m.emplace<nn::Activation>(nn::Activation::Kind::kTanh).emplace<nn::Linear>(8, 3);
    m.build(Device::cpu(), 5);
    optim::Adam opt(m.parameters(), {.lr = 0.01F});
    train::TrainerOptions o = options(batch, comm);
    o.sync_batchnorm = sync;
    train::Trainer(m, opt, o).fit(train);
    EXPECT_FALSE(m.synchronizes_batch_statistics());  // for the fit only
    std::vector<float> all = m.parameters().to_host();
    const std::vector<float> buffers = m.buffers().to_host();
    all.insert(all.end(), buffers.begin(), buffers.end());
    return all;
  };
  const std::vector<float> want = run(32, nullptr, false);
  double scale = 0;
  for (const float v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  const std::vector<float> got = run(16, &world, true), own = run(16, &world, false);
  double own_gap = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5 * scale) << "element " << i << " on rank " << world.rank();
    own_gap = std::max(own_gap, std::fabs(static_cast<double>(own[i]) - want[i]));
  }
  EXPECT_GT(own_gap, 1e-3 * scale) << "each rank's own statistics should differ";

  // A checkpoint records whose statistics it trained with: a resume with the other is refused.
  const std::string path = shared_path(world, "cutrain_dist_sync_bn_");
  nn::Sequential m(6);
  m.emplace<nn::Linear>(6, 8).emplace<nn::BatchNorm1d>(8).emplace<nn::Linear>(8, 3);
  m.build(Device::cpu(), 5);
  optim::Adam opt(m.parameters(), {.lr = 0.01F});
  train::TrainerOptions o = options(16, &world);
  o.epochs = 1;
  o.sync_batchnorm = true;
  o.checkpoint_path = path;
  train::Trainer(m, opt, o).fit(train);
  world.barrier();  // rank 1 reads what rank 0 wrote
  o.epochs = 2;
  o.checkpoint_path.clear();
  o.sync_batchnorm = false;
  train::Trainer other(m, opt, o);
  other.resume(path);
  try {
    other.fit(train);
    ADD_FAILURE() << "a resume with each rank's own statistics was not refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("give the same sync_batchnorm to continue it"),
              std::string::npos)
        << e.what();
  }
  world.barrier();
  if (world.rank() == 0) std::remove(path.c_str());
}

}  // namespace
}  // namespace cutrain
