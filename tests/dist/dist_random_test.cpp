// The random configurations of tests/train/resume_anywhere.hpp on two MPI ranks (run by CTest as
// part of `mpirun -np 2 dist_test`): stopped anywhere and resumed, and against one process with
// the combined batch.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "cutrain/dist/communicator.hpp"
#include "train/resume_anywhere.hpp"

namespace cutrain {
namespace {

// tests/train/resume_anywhere.hpp over two ranks: random configurations (synchronized
// BatchNorm, gradient buckets, resident data among them) stopped anywhere and resumed end as the
// uninterrupted two-rank run, bit for bit, every rank with rank 0's weights.
TEST(Distributed, StoppedAndResumedRunsAreTheUninterruptedRun) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  const double token = world.allreduce_sum(world.rank() == 0 ? static_cast<double>(::getpid()) : 0);
  constexpr unsigned kConfigurations = 100;
  const int compared = train::resume_anywhere::check_resume_anywhere(
      1, kConfigurations, "ranks" + std::to_string(static_cast<long long>(token)), &world);
  EXPECT_GT(compared, static_cast<int>(kConfigurations) / 2);
}

// The random configurations of tests/train/resume_anywhere.hpp, each trained on two ranks with
// batch B and in one process with batch 2B: the same rows, batch by batch, so the same weights up
// to the all-reduce's order of addition (2.9e-7 of the largest weight measured). SGD with
// momentum: Adam's update divides by the root of its second moment, which turns a rounding
// difference in a near-zero gradient into a step of lr (1% apart after 28 steps, the same code).
// Synchronized BatchNorm wherever there is BatchNorm; no class weights (each rank's weighted mean,
// as in DDP).
TEST(Distributed, TwoRanksEqualOneProcessAcrossRandomConfigurations) {
  dist::Communicator& world = dist::Communicator::world();
  ASSERT_EQ(world.size(), 2) << "run under mpirun -np 2";
  int compared = 0;
  for (unsigned seed = 1; seed <= 120; ++seed) {
    train::resume_anywhere::Config c(seed);
    c.optimizer = 0;
    c.options.class_weights.clear();
    c.options.patience = 0;
    c.options.drop_last = false;
    SCOPED_TRACE("configuration " + std::to_string(seed) + ": " + c.describe());
    const data::Dataset all = c.data();
    data::Dataset train = all, val;
    if (c.validation) std::tie(train, val) = data::split(all, 0.2, 3);
    const data::Dataset* validation = c.validation ? &val : nullptr;
    const std::int64_t b = c.options.batch_size, half = train.rows / 2;
    // Rows that split evenly, and no one-row batch for BatchNorm on either side.
    if (train.rows % 2 != 0 || (c.batchnorm && (half % b == 1 || train.rows % (2 * b) == 1)))
      continue;
    const std::int64_t steps =
        ((half + b - 1) / b + c.options.accumulate_steps - 1) / c.options.accumulate_steps;
    nn::Sequential one = c.model(7);
    auto one_opt = c.optimizer_for(one);
    train::TrainerOptions o = c.options_for(steps);
    o.batch_size = 2 * b;
    train::Trainer(one, *one_opt, o).fit(train, validation);
    nn::Sequential two = c.model(7);
    auto two_opt = c.optimizer_for(two);
    o = c.options_for(steps);
    o.communicator = &world;
    o.sync_batchnorm = c.batchnorm;
    train::Trainer(two, *two_opt, o).fit(train, validation);
    const std::vector<float> want = one.parameters().to_host(), got = two.parameters().to_host();
    float scale = 0;
    for (const float v : want) scale = std::max(scale, std::fabs(v));
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5F * scale) << "parameter " << i;
    ++compared;
  }
  EXPECT_GT(compared, 40);
}

}  // namespace
}  // namespace cutrain
