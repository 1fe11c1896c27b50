// Note [synchronized batch statistics] (kernels/nn/batch_sync.hpp): with a sum over the ranks,
// every BatchNorm of a replica normalizes, updates its running statistics and back-propagates
// with the statistics of the global batch. Ranks are threads here, each with its own model, the
// sum a host-side exchange between them (what the communicator's all-reduce computes), so the
// check needs neither MPI nor a second GPU; tests/dist runs the real one under mpirun.
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/nn.hpp"
#include "nn_fixture.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::all_tensors;
using testing::DeviceMatrix;
using testing::to_host;

const Shape kImage{2, 5, 4};
constexpr std::int64_t kRows = 6;  // per rank

// BatchNorm2d + ReLU (one fused pass each way) at the input and after a convolution, a plain
// BatchNorm2d inside a residual block, and a BatchNorm1d after the classifier's Linear.
Sequential model(Device device) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  m.emplace<BatchNorm2d>(2).emplace<Activation>(Activation::Kind::kRelu);
  m.emplace<Conv2d>(2, 3, 3, 1, 1);
  auto block = std::make_unique<Residual>();
  block->emplace<BatchNorm2d>(3).emplace<Conv2d>(3, 3, 3, 1, 1);
  m.add(std::move(block));
  m.emplace<BatchNorm2d>(3).emplace<Activation>(Activation::Kind::kRelu);
  m.emplace<Flatten>().emplace<Linear>(numel({3, 5, 4}), 4).emplace<BatchNorm1d>(4);
  m.build(device, 21);
  return m;
}

struct Run {
  std::vector<float> y, dx;
  std::vector<std::vector<float>> grads, buffers;
};

// One training forward and backward of x [rows, F] with the output gradient dy.
Run run(Sequential& m, const std::vector<float>& xs, const std::vector<float>& dys,
        std::int64_t rows) {
  const Device d = m.device();
  const std::int64_t f = m.input_features(), o = m.output_features();
  DeviceMatrix x(xs, rows, f, d), dy(dys, rows, o, d), dx(rows, f, d);
  Run r;
  r.y = to_host(m.forward(x.m));
  m.backward(dy.m, nullptr, &dx.m);
  r.dx = to_host(dx.m);
  r.grads = all_tensors(m.gradients());
  r.buffers = all_tensors(m.buffers());
  return r;
}

std::vector<float> normal_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.5F, 2.0F);
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

// Rank r's rows of a global batch: rows r, r + W, ... (Note [replica rows]).
std::vector<float> rows_of(const std::vector<float>& all, std::int64_t cols, int rank, int world) {
  std::vector<float> out;
  const auto rows = static_cast<std::int64_t>(all.size()) / cols;
  for (std::int64_t i = rank; i < rows; i += world)
    out.insert(out.end(), all.begin() + i * cols, all.begin() + (i + 1) * cols);
  return out;
}

// The all-reduce the communicator runs, between threads: each rank posts its values, then every
// rank adds the posts in rank order (so all ranks get the same bits, as NCCL's and MPI's do).
class ThreadRanks {
 public:
  explicit ThreadRanks(int world) : posts_(static_cast<std::size_t>(world)), sync_(world) {}
  Sequential::RankSum sum_for(int rank, Device device) {
    return [this, rank, device](double* values, std::size_t n, NativeStream stream) {
      std::vector<double>& mine = posts_[static_cast<std::size_t>(rank)];
      mine.assign(n, 0.0);
      copy_bytes(mine.data(), Device::cpu(), values, device, n * sizeof(double), stream);
      sync_.arrive_and_wait();  // every rank has posted
      std::vector<double> total(posts_[0]);
      for (std::size_t r = 1; r < posts_.size(); ++r)
        for (std::size_t i = 0; i < n; ++i) total[i] += posts_[r][i];
      sync_.arrive_and_wait();  // every rank has read the posts
      copy_bytes(values, device, total.data(), Device::cpu(), n * sizeof(double), stream);
    };
  }

 private:
  std::vector<std::vector<double>> posts_;
  std::barrier<> sync_;
};

// The largest |a - b| over max(|b|, floor): rounding-sized when the values agree. The floor keeps
// the gradient of a bias before a BatchNorm - 0 in exact arithmetic, rounding noise here - from
// being its own scale.
double relative_gap(const std::vector<float>& a, const std::vector<float>& b,
                    double floor = 1e-30) {
  EXPECT_EQ(a.size(), b.size());
  double gap = 0.0, scale = floor;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    gap = std::max(gap, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return gap / scale;
}

void expect_one_rank_bits(Device device) {
  Sequential plain = model(device), synced = model(device);
  synced.set_batch_statistics_sum([](double*, std::size_t, NativeStream) {});  // a world of one
  EXPECT_TRUE(synced.synchronizes_batch_statistics());
  const std::int64_t f = numel(kImage);
  const auto xs = normal_values(static_cast<std::size_t>(kRows * f), 1);
  const auto dys = normal_values(static_cast<std::size_t>(kRows * 4), 2);
  const Run a = run(plain, xs, dys, kRows), b = run(synced, xs, dys, kRows);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.dx, b.dx);
  EXPECT_EQ(a.grads, b.grads);
  EXPECT_EQ(a.buffers, b.buffers);
}

TEST(BatchNormSync, OneRankIsTheUnsynchronizedLayer) {
  expect_one_rank_bits(Device::cpu());
}

TEST(BatchNormSyncGpu, OneRankIsTheUnsynchronizedLayer) {
  CUTRAIN_REQUIRE_GPU();
  expect_one_rank_bits(Device::cuda(0));
}

// Two ranks with synchronized statistics against one model on their combined batch: each rank's
// outputs and input gradients are the combined batch's rows, its running statistics the combined
// batch's, and the ranks' parameter gradients add up to the combined batch's - all to the
// rounding of the ranks' order of addition. Unsynchronized, they are not (the test can fail).
void expect_two_ranks_are_the_combined_batch(Device device) {
  constexpr int kWorld = 2;
  const std::int64_t f = numel(kImage), o = 4, rows = kWorld * kRows;
  const auto xs = normal_values(static_cast<std::size_t>(rows * f), 3);
  const auto dys = normal_values(static_cast<std::size_t>(rows * o), 4);
  Sequential whole = model(device);
  const Run combined = run(whole, xs, dys, rows);
  for (const bool synced : {true, false}) {
    ThreadRanks ranks(kWorld);
    std::vector<Run> runs(kWorld);
    std::vector<std::thread> threads;
    for (int r = 0; r < kWorld; ++r)
      threads.emplace_back([&, r] {
        Sequential m = model(device);
        m.set_replica(r, kWorld);
        if (synced) m.set_batch_statistics_sum(ranks.sum_for(r, device));
        runs[r] = run(m, rows_of(xs, f, r, kWorld), rows_of(dys, o, r, kWorld), kRows);
      });
    for (std::thread& t : threads) t.join();
    const std::string what = synced ? "synchronized" : "each rank's own statistics";
    double gap = 0.0;
    for (int r = 0; r < kWorld; ++r) {
      gap = std::max(gap, relative_gap(runs[r].y, rows_of(combined.y, o, r, kWorld)));
      gap = std::max(gap, relative_gap(runs[r].dx, rows_of(combined.dx, f, r, kWorld)));
      for (std::size_t k = 0; k < combined.buffers.size(); ++k)
        gap = std::max(gap, relative_gap(runs[r].buffers[k], combined.buffers[k]));
    }
    for (std::size_t k = 0; k < combined.grads.size(); ++k) {
      std::vector<float> sum(combined.grads[k].size());
      for (std::size_t i = 0; i < sum.size(); ++i)
        sum[i] = runs[0].grads[k][i] + runs[1].grads[k][i];
      gap = std::max(gap, relative_gap(sum, combined.grads[k], 1.0));
    }
    if (synced) {
      EXPECT_LT(gap, 2e-5) << what;
      EXPECT_EQ(runs[0].buffers, runs[1].buffers) << what;  // the same sums on every rank
    } else {
      EXPECT_GT(gap, 1e-2) << what;
    }
  }
}

TEST(BatchNormSync, TwoRanksNormalizeWithTheirCombinedBatch) {
  expect_two_ranks_are_the_combined_batch(Device::cpu());
}

TEST(BatchNormSyncGpu, TwoRanksNormalizeWithTheirCombinedBatch) {
  CUTRAIN_REQUIRE_GPU();
  expect_two_ranks_are_the_combined_batch(Device::cuda(0));
}

}  // namespace
}  // namespace cutrain::nn
