// A single-process group still runs its collectives (dist::Communicator::
// single_process_group): on a GPU, ncclAllReduce with ncclAvg over one rank, which must leave
// training bit-identical to training without a communicator — the 1-rank NCCL check of
// scripts/gpu_check.sh. On the CPU the group is the identity.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "cutrain/buffer.hpp"
#include "cutrain/data.hpp"
#include "cutrain/dist/communicator.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "src/dist/watchdog.hpp"
#include "support/blobs.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

data::Dataset blobs() {
  return testing::blobs(300, 5, 3, 1.0F, 0.8F, 9);
}

std::vector<float> train_on(Device device, dist::Communicator* comm, std::size_t bucket_bytes = 0) {
  nn::Sequential m(5);
  m.emplace<nn::Linear>(5, 12).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  m.emplace<nn::Linear>(12, 3);
  m.build(device, 2);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  train::TrainerOptions o;
  o.epochs = 2;
  o.batch_size = 32;
  o.clip_norm = 1.0F;
  o.progress = false;
  o.communicator = comm;
  o.bucket_bytes = bucket_bytes;
  train::Trainer(m, opt, o).fit(blobs());
  return m.parameters().to_host();
}

TEST(DistLocal, SingleProcessGroupOnTheCpuIsTheIdentity) {
  auto group = dist::Communicator::single_process_group();
  EXPECT_EQ(group->size(), 1);
  EXPECT_EQ(group->rank(), 0);
  EXPECT_EQ(train_on(Device::cpu(), group.get()), train_on(Device::cpu(), nullptr));
  EXPECT_EQ(group->allreduce_sum(2.5), 2.5);
}

// Note [gradient buckets]: every tensor lands in exactly one bucket, the first one launched
// after its layer's backward, and the buckets' ranges tile each group's span.
TEST(DistLocal, BucketsTileTheGradientArenaInBackwardOrder) {
  nn::Sequential m(5);
  m.emplace<nn::Linear>(5, 12).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  m.emplace<nn::Linear>(12, 12).emplace<nn::BatchNorm1d>(12).emplace<nn::Linear>(12, 3);
  m.build(Device::cpu(), 1);
  const ArenaLayout& layout = m.gradients().layout();
  ASSERT_EQ(layout.groups().size(), 2U);  // weights; biases and BatchNorm's parameters
  for (const std::size_t elements : {std::size_t{1}, std::size_t{100}, std::size_t{1} << 30}) {
    const auto buckets = dist::plan_buckets(layout, m.layer_parameters(), elements);
    ASSERT_FALSE(buckets.empty());
    EXPECT_EQ(buckets.back().ready_after_layer, 0U);
    std::vector<int> owner(layout.total(), -1);
    for (std::size_t b = 0; b < buckets.size(); ++b) {
      if (b > 0) {
        EXPECT_LT(buckets[b].ready_after_layer, buckets[b - 1].ready_after_layer);
      }
      for (const dist::ArenaRange& r : buckets[b].ranges)
        for (std::size_t i = r.begin; i < r.end; ++i) {
          ASSERT_EQ(owner[i], -1) << "element " << i << " in two buckets";
          owner[i] = static_cast<int>(b);
        }
    }
    for (std::size_t i = 0; i < owner.size(); ++i) ASSERT_NE(owner[i], -1) << "element " << i;
    for (std::size_t k = 0; k < m.size(); ++k)
      for (const std::size_t t : m.layer_parameters()[k]) {
        const TensorSpec& spec = layout.tensors()[t];
        const int b = owner[spec.offset];
        EXPECT_EQ(owner[spec.offset + spec.numel - 1], b) << spec.name << " split";
        std::size_t first = 0;  // the first bucket launched at or after layer k's backward
        while (buckets[first].ready_after_layer > k) ++first;
        EXPECT_EQ(b, static_cast<int>(first)) << spec.name << " with " << elements;
      }
    if (elements == 1) {
      EXPECT_EQ(buckets.size(), 4U);  // Linear 4, BatchNorm 3, Linear 2, Linear 0
    }
    if (elements == std::size_t{1} << 30) {
      EXPECT_EQ(buckets.size(), 1U);
    }
  }
  EXPECT_THROW(dist::plan_buckets(layout, {}, 1), Error);
  EXPECT_THROW(dist::plan_buckets(layout, m.layer_parameters(), 0), Error);
}

TEST(DistLocal, BucketedSingleProcessGroupOnTheCpuIsTheIdentity) {
  auto group = dist::Communicator::single_process_group();
  EXPECT_EQ(train_on(Device::cpu(), group.get(), 64), train_on(Device::cpu(), nullptr));
  // A range outside the arena is refused before anything is started.
  ArenaLayout::Builder b;
  b.add("w", {10});
  Arena a(b.build(), Device::cpu());
  EXPECT_NE(testing::error_of([&] {
              group->start_mean(a, {{0, a.total() + 1}});
            }).find("is not inside the arena's 64 elements"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              group->start_mean(a, {{5, 5}});
            }).find("range [5, 5)"),
            std::string::npos);
}

TEST(DistLocal, TimeoutComesFromTheEnvironment) {
  ::setenv("CUTRAIN_DIST_TIMEOUT_S", "42.5", 1);
  EXPECT_EQ(dist::Communicator::single_process_group()->timeout_s(), 42.5);
  ::setenv("CUTRAIN_DIST_TIMEOUT_S", "soon", 1);
  EXPECT_NE(testing::error_of([] {
              dist::Communicator::single_process_group();
            }).find("CUTRAIN_DIST_TIMEOUT_S='soon' is not a number of seconds"),
            std::string::npos);
  ::setenv("CUTRAIN_DIST_TIMEOUT_S", "-1", 1);
  EXPECT_NE(testing::error_of([] { dist::Communicator::single_process_group(); }).find("> 0"),
            std::string::npos);
  ::unsetenv("CUTRAIN_DIST_TIMEOUT_S");
  EXPECT_EQ(dist::Communicator::single_process_group()->timeout_s(), 600.0);
}

// Note [collective timeout]: a collective that outlives the timeout ends the process with
// exit code 3 and a message naming it; one that completes in time is forgotten.
TEST(DistLocal, WatchdogEndsAStuckCollectiveAndSparesAFinishedOne) {
  {
    dist::detail::Watchdog w(0, 0.3);
    { const dist::detail::Watchdog::Scope quick(&w, "a quick collective"); }
    std::this_thread::sleep_for(std::chrono::milliseconds(600));  // twice the timeout: no exit
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // re-executes: safe with threads running
  EXPECT_EXIT(
      {
        dist::detail::Watchdog w(4, 0.3);
        const dist::detail::Watchdog::Scope stuck(&w, "MPI_Allreduce of the test");
        std::this_thread::sleep_for(std::chrono::seconds(30));
      },
      ::testing::ExitedWithCode(3),
      "rank 4: MPI_Allreduce of the test has not completed after 0\\.[3-9] "
      "s.*CUTRAIN_DIST_TIMEOUT_S=0.3");
}

TEST(DistLocalGpu, OneRankNcclMatchesTheNonDistributedRun) {
  CUTRAIN_REQUIRE_GPU();
  if (!dist::Communicator::nccl_compiled()) {
    if (const char* f = std::getenv("CUTRAIN_REQUIRE_GPU"); f != nullptr && f[0] == '1')
      FAIL() << "built without NCCL (nccl.h / libnccl not found next to the CUDA toolkit)";
    GTEST_SKIP() << "built without NCCL";
  }
  auto group = dist::Communicator::single_process_group();
  const Device gpu = Device::cuda(0);
  // ncclAvg over one rank divides by 1: bit-identical, not merely close. Bucketed too (64 bytes:
  // one bucket per layer, launched on the communication stream during backward).
  const auto plain = train_on(gpu, nullptr);
  EXPECT_EQ(train_on(gpu, group.get()), plain);
  EXPECT_EQ(train_on(gpu, group.get(), 64), plain);
}

// Note [synchronized batch statistics] through the group's all-reduce of doubles (on a GPU
// ncclAllReduce with ncclSum over one rank; on the CPU the identity): a BatchNorm network's
// forward and backward keep the unsynchronized bits.
std::vector<std::vector<float>> batchnorm_step(Device device, dist::Communicator* group) {
  nn::Sequential m(12);
  m.emplace<nn::Unflatten>(1, Shape{3, 2, 2}).emplace<nn::BatchNorm2d>(3);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Flatten>();
  m.emplace<nn::Linear>(12, 4).emplace<nn::BatchNorm1d>(4);
  m.build(device, 3);
  if (group != nullptr)
    m.set_batch_statistics_sum([group, device](double* v, std::size_t n, NativeStream stream) {
      group->allreduce_sum(v, n, device, stream);
    });
  std::mt19937_64 gen(5);
  std::normal_distribution<float> normal(1.0F, 3.0F);
  std::vector<float> xs(9 * 12), dys(9 * 4);
  for (float& v : xs) v = normal(gen);
  for (float& v : dys) v = normal(gen);
  Buffer x(xs.size() * sizeof(float), device), dy(dys.size() * sizeof(float), device);
  copy_bytes(x.data(), device, xs.data(), Device::cpu(), x.bytes());
  copy_bytes(dy.data(), device, dys.data(), Device::cpu(), dy.bytes());
  const nn::Matrix& y = m.forward({x.as<float>(), 9, 12, device});
  std::vector<float> out(y.size());
  copy_bytes(out.data(), Device::cpu(), y.data, device, out.size() * sizeof(float));
  m.backward({dy.as<float>(), 9, 4, device});
  return {out, m.gradients().to_host(), m.buffers().to_host()};
}

TEST(DistLocal, SynchronizedBatchNormOverOneRankKeepsTheBits) {
  auto group = dist::Communicator::single_process_group();
  EXPECT_EQ(batchnorm_step(Device::cpu(), group.get()), batchnorm_step(Device::cpu(), nullptr));
}

TEST(DistLocalGpu, SynchronizedBatchNormOverOneRankNcclKeepsTheBits) {
  CUTRAIN_REQUIRE_GPU();
  if (!dist::Communicator::nccl_compiled()) GTEST_SKIP() << "built without NCCL";
  auto group = dist::Communicator::single_process_group();
  const Device gpu = Device::cuda(0);
  EXPECT_EQ(batchnorm_step(gpu, group.get()), batchnorm_step(gpu, nullptr));
}

}  // namespace
}  // namespace cutrain
