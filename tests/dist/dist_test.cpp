// Data-parallel training under MPI (run by CTest as `mpirun -np 2 dist_test`): two ranks with
// batch B must end where one process with batch 2B ends (<= 1e-6 of each tensor's scale), and
// the ranks' weights must be bit-identical after every epoch.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cutrain/data.hpp"
#include "cutrain/dist/communicator.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"

namespace cutrain {
namespace {

data::Dataset blobs(std::int64_t rows) {
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0F, 0.7F);
  data::Dataset d;
  d.rows = rows;
  d.features = 6;
  d.classes = 3;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto c = static_cast<std::int32_t>(r % 3);
    for (int f = 0; f < 6; ++f) d.x.push_back((f % 3 == c ? 1.5F : 0.0F) + noise(rng));
    d.labels.push_back(c);
  }
  return d;
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
}

}  // namespace
}  // namespace cutrain
