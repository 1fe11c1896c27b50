// Datasets, preprocessing, splits and the streaming loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "cutrain/data.hpp"
#include "cutrain/error.hpp"
#include "src/data/loader_impl.hpp"
#include "support/gpu.hpp"

namespace cutrain::data {
namespace {

// Row r has features (r, r + 0.5, ...) and label r % 7: batch contents identify source rows.
Dataset numbered(std::int64_t rows, std::int64_t features = 3) {
  Dataset d;
  d.rows = rows;
  d.features = features;
  d.classes = 7;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t f = 0; f < features; ++f) d.x.push_back(static_cast<float>(r) + 0.5F * f);
    d.labels.push_back(static_cast<std::int32_t>(r % 7));
  }
  return d;
}

TEST(Dataset, PermutationIsSeededAndVariesByEpoch) {
  const auto a = permutation(1000, 5, 0);
  EXPECT_EQ(a, permutation(1000, 5, 0));
  EXPECT_NE(a, permutation(1000, 5, 1));
  EXPECT_NE(a, permutation(1000, 6, 0));
  std::set<std::int64_t> s(a.begin(), a.end());
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(*s.begin(), 0);
  EXPECT_EQ(*s.rbegin(), 999);
}

TEST(Dataset, SplitStandardizeScaleValidate) {
  Dataset d = numbered(100);
  auto [train, val] = split(d, 0.2, 3);
  EXPECT_EQ(val.rows, 20);
  EXPECT_EQ(train.rows, 80);
  std::set<float> seen;
  for (std::int64_t r = 0; r < train.rows; ++r)
    seen.insert(train.x[static_cast<std::size_t>(r * 3)]);
  for (std::int64_t r = 0; r < val.rows; ++r) seen.insert(val.x[static_cast<std::size_t>(r * 3)]);
  EXPECT_EQ(seen.size(), 100u);  // a partition
  const Standardizer s = Standardizer::fit(train);
  double mean0 = 0;
  for (std::int64_t r = 0; r < train.rows; ++r) mean0 += train.x[static_cast<std::size_t>(r * 3)];
  EXPECT_NEAR(s.mean[0], mean0 / 80, 1e-4);  // statistics from the training split only
  s.apply(train);
  s.apply(val);
  double m = 0, v = 0;
  for (std::int64_t r = 0; r < train.rows; ++r) m += train.x[static_cast<std::size_t>(r * 3)];
  m /= 80;
  for (std::int64_t r = 0; r < train.rows; ++r)
    v += std::pow(train.x[static_cast<std::size_t>(r * 3)] - m, 2);
  EXPECT_NEAR(m, 0, 1e-5);
  EXPECT_NEAR(v / 80, 1, 1e-4);
  Dataset px = numbered(2);
  scale(px, 0.5F);
  EXPECT_EQ(px.x[3], 0.5F);
  Dataset bad = numbered(3);
  bad.labels[1] = 9;
  EXPECT_THROW(bad.validate(), Error);
  EXPECT_THROW(split(d, 1.0, 1), Error);
}

// 100 rows of classes 0 (60), 1 (30), 2 (7), 3 (3); 20% held out = 20 rows, exact shares 12,
// 6, 1.4 and 0.6: floors 12, 6, 1, 0 (19) and the one left to the largest remainder, class 3's.
TEST(Dataset, StratifiedSplitKeepsEachClasssShare) {
  Dataset d;
  d.rows = 100;
  d.features = 1;
  d.classes = 4;
  for (int r = 0; r < 100; ++r) {
    d.x.push_back(static_cast<float>(r));
    d.labels.push_back(r < 60 ? 0 : r < 90 ? 1 : r < 97 ? 2 : 3);
  }
  const auto [train, val] = stratified_split(d, 0.2, 7);
  auto counts = [](const Dataset& s) {
    std::vector<int> c(4, 0);
    for (const std::int32_t l : s.labels) ++c[static_cast<std::size_t>(l)];
    return c;
  };
  EXPECT_EQ(counts(val), (std::vector<int>{12, 6, 1, 1}));
  EXPECT_EQ(counts(train), (std::vector<int>{48, 24, 6, 2}));
  std::set<float> rows(train.x.begin(), train.x.end());
  rows.insert(val.x.begin(), val.x.end());
  EXPECT_EQ(rows.size(), 100u);                // a partition
  for (std::int64_t r = 0; r < val.rows; ++r)  // each row keeps its own label
    EXPECT_EQ(val.labels[static_cast<std::size_t>(r)],
              d.labels[static_cast<std::size_t>(val.x[r])]);
  // Seeded: the same seed the same rows, another seed others (with the same counts).
  EXPECT_EQ(stratified_split(d, 0.2, 7).second.x, val.x);
  const auto other = stratified_split(d, 0.2, 8).second;
  EXPECT_NE(other.x, val.x);
  EXPECT_EQ(counts(other), counts(val));
  EXPECT_EQ(split(d, 0.2, 7).second.rows, val.rows);  // as many rows as split()
  Dataset targets = d;
  targets.labels.clear();
  targets.targets.assign(100, 1.0F);
  targets.target_width = 1;
  EXPECT_THROW(stratified_split(targets, 0.2, 1), Error);
  EXPECT_THROW(stratified_split(d, 1.0, 1), Error);
}

void check_epochs(Device device, std::int64_t rows, std::int64_t batch, bool drop_last,
                  bool resident = false) {
  const Dataset d = numbered(rows);
  Loader loader(d, device,
                {.batch_size = batch,
                 .shuffle = true,
                 .drop_last = drop_last,
                 .seed = 11,
                 .prefetch = 3,
                 .resident = resident});
  std::vector<std::vector<std::int64_t>> orders;
  Stream compute(device);
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch(epoch);
    std::vector<std::int64_t> order;
    std::int64_t batches = 0;
    while (auto b = loader.next(compute.native())) {
      EXPECT_EQ(b->index, batches++);
      std::vector<float> x(static_cast<std::size_t>(b->rows * 3));
      std::vector<std::int32_t> y(static_cast<std::size_t>(b->rows));
      compute.synchronize();
      copy_bytes(x.data(), Device::cpu(), b->x.data, device, x.size() * sizeof(float));
      copy_bytes(y.data(), Device::cpu(), b->labels, device, y.size() * sizeof(std::int32_t));
      for (std::int64_t r = 0; r < b->rows; ++r) {
        const auto src = static_cast<std::int64_t>(x[static_cast<std::size_t>(r * 3)]);
        EXPECT_EQ(x[static_cast<std::size_t>(r * 3 + 2)], static_cast<float>(src) + 1.0F);
        EXPECT_EQ(y[static_cast<std::size_t>(r)], src % 7);  // labels travel with their rows
        order.push_back(src);
      }
      EXPECT_TRUE(b->rows == batch || (!drop_last && b->index == loader.batches_per_epoch() - 1));
    }
    EXPECT_EQ(batches, loader.batches_per_epoch());
    const std::vector<std::int64_t> perm = permutation(rows, 11, epoch);
    EXPECT_EQ(order, std::vector<std::int64_t>(
                         perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(order.size())));
    if (!drop_last) {
      std::set<std::int64_t> s(order.begin(), order.end());
      EXPECT_EQ(s.size(), static_cast<std::size_t>(rows)) << "every sample once per epoch";
      EXPECT_EQ(order.size(), static_cast<std::size_t>(rows));
    }
    orders.push_back(order);
  }
  EXPECT_NE(orders[0], orders[1]);
}

TEST(Loader, EverySampleOncePerEpochInSeededOrder) {
  check_epochs(Device::cpu(), 103, 10, false);
  check_epochs(Device::cpu(), 103, 10, true);
  check_epochs(Device::cpu(), 103, 10, false, /*resident=*/true);
  check_epochs(Device::cpu(), 103, 10, true, /*resident=*/true);
}

// What a loader hands out over one epoch, copied to the host batch by batch.
struct Epoch {
  std::vector<float> x, targets;
  std::vector<std::int32_t> labels;
  std::vector<std::int64_t> rows, index;
  bool operator==(const Epoch&) const = default;
};

Epoch collect(const Dataset& d, Device device, const LoaderOptions& o, std::uint64_t epoch,
              std::int64_t skip) {
  Loader loader(d, device, o);
  Stream compute(device);
  loader.start_epoch(epoch + 1);  // abandoned: start_epoch must reset the position
  loader.next(compute.native());
  loader.start_epoch(epoch, skip);
  Epoch e;
  while (auto b = loader.next(compute.native())) {
    compute.synchronize();
    std::vector<float> x(b->x.size());
    copy_bytes(x.data(), Device::cpu(), b->x.data, device, x.size() * sizeof(float));
    e.x.insert(e.x.end(), x.begin(), x.end());
    if (d.classification()) {
      std::vector<std::int32_t> y(static_cast<std::size_t>(b->rows));
      copy_bytes(y.data(), Device::cpu(), b->labels, device, y.size() * sizeof(std::int32_t));
      e.labels.insert(e.labels.end(), y.begin(), y.end());
    } else {
      std::vector<float> t(b->targets.size());
      copy_bytes(t.data(), Device::cpu(), b->targets.data, device, t.size() * sizeof(float));
      e.targets.insert(e.targets.end(), t.begin(), t.end());
    }
    e.rows.push_back(b->rows);
    e.index.push_back(b->index);
  }
  return e;
}

// Note [resident datasets]: the resident loader hands out the streaming pipeline's batches, bit
// for bit, in every configuration (shuffled or not, last batch kept or dropped, sharded over
// ranks, resumed mid-epoch, labels or regression targets, rows of 3 and of 8 floats).
void check_resident_matches_streaming(Device device) {
  Dataset regression = numbered(61, 8);
  regression.labels.clear();
  regression.classes = 0;
  regression.target_width = 2;
  for (std::int64_t r = 0; r < regression.rows; ++r)
    regression.targets.insert(regression.targets.end(), {static_cast<float>(-r), 0.25F * r});
  const Dataset classes = numbered(103, 3);
  int checked = 0;
  for (const Dataset* d : {&classes, static_cast<const Dataset*>(&regression)}) {
    for (const bool shuffle : {true, false}) {
      for (const bool drop_last : {false, true}) {
        for (const int world : {1, 2}) {
          for (const std::int64_t skip : {0, 2}) {
            LoaderOptions o{.batch_size = 8,
                            .shuffle = shuffle,
                            .drop_last = drop_last,
                            .seed = 4,
                            .rank = world - 1,
                            .world = world};
            const Epoch streamed = collect(*d, Device::cpu(), o, 3, skip);
            o.resident = true;
            const Epoch resident = collect(*d, device, o, 3, skip);
            ASSERT_FALSE(streamed.rows.empty());
            ASSERT_EQ(resident, streamed) << "shuffle " << shuffle << " drop_last " << drop_last
                                          << " world " << world << " skip " << skip;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 32);
}

TEST(Loader, ResidentBatchesAreTheStreamingOnes) {
  check_resident_matches_streaming(Device::cpu());
}

TEST(Loader, StopsMidEpochResumesAndRejectsBadOptions) {
  const Dataset d = numbered(50);
  Loader loader(d, Device::cpu(), {.batch_size = 4, .seed = 2});
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());
  loader.start_epoch(1, 5);  // abandons epoch 0 mid-way; skips 5 batches of epoch 1
  auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->index, 5);
  EXPECT_EQ(b->x.data[0], static_cast<float>(permutation(50, 2, 1)[20]));
  {
    Loader abandoned(d, Device::cpu(), {.batch_size = 4});
    abandoned.start_epoch(0);
    abandoned.next();
  }  // destroyed mid-epoch: joins cleanly
  EXPECT_THROW(Loader(d, Device::cpu(), {.batch_size = 0}), Error);
  EXPECT_THROW(Loader(d, Device::cpu(), {.prefetch = 1}), Error);
  Dataset empty;
  EXPECT_THROW(Loader(empty, Device::cpu(), {}), Error);
  Loader fresh(d, Device::cpu(), {});
  EXPECT_THROW(fresh.next(), Error);  // before start_epoch
}

// A batch size above the data set's gives one batch of every row per epoch (torch's DataLoader
// does the same); the staging buffers are sized by the data, so even an absurd batch size
// neither allocates for it nor overflows the byte count.
TEST(Loader, BatchLargerThanTheDataSetIsOneFullBatch) {
  const Dataset d = numbered(37);
  for (const bool resident : {false, true}) {
    // The largest batch too: its rounded-up count once overflowed to 0 batches.
    for (const std::int64_t batch :
         {std::int64_t{38}, std::int64_t{1} << 61, std::numeric_limits<std::int64_t>::max()}) {
      const LoaderOptions o{.batch_size = batch, .seed = 1, .resident = resident};
      Loader loader(d, Device::cpu(), o);
      EXPECT_EQ(loader.max_batch_rows(), 37);
      EXPECT_EQ(loader.batches_per_epoch(), 1);
      const Epoch e = collect(d, Device::cpu(), o, 0, 0);
      ASSERT_EQ(e.rows, std::vector<std::int64_t>{37});
      const auto order = permutation(37, 1, 0);
      for (std::size_t i = 0; i < order.size(); ++i)
        EXPECT_EQ(e.x[i * 3], static_cast<float>(order[i])) << "row " << i;
    }
  }
  Loader sharded(d, Device::cpu(), {.batch_size = 100, .rank = 1, .world = 2});
  EXPECT_EQ(sharded.max_batch_rows(), 19);  // this rank's padded share: ceil(37 / 2)
}

// DistributedSampler semantics: W ranks with batch B see, batch by batch, exactly the samples
// one process with batch W * B sees; an indivisible epoch is padded with its first entries.
TEST(Loader, ShardsMatchTheCombinedBatch) {
  const Dataset d = numbered(48);
  const int world = 3;
  Loader single(d, Device::cpu(), {.batch_size = 12, .seed = 8});
  single.start_epoch(2);
  std::vector<std::vector<std::int64_t>> combined;
  while (auto b = single.next()) {
    combined.emplace_back();
    for (std::int64_t r = 0; r < b->rows; ++r)
      combined.back().push_back(static_cast<std::int64_t>(b->x.data[r * 3]));
  }
  std::vector<std::vector<std::int64_t>> sharded(combined.size());
  for (int rank = 0; rank < world; ++rank) {
    Loader shard(d, Device::cpu(), {.batch_size = 4, .seed = 8, .rank = rank, .world = world});
    EXPECT_EQ(shard.batches_per_epoch(), 4);
    shard.start_epoch(2);
    while (auto b = shard.next())
      for (std::int64_t r = 0; r < b->rows; ++r)
        sharded[static_cast<std::size_t>(b->index)].push_back(
            static_cast<std::int64_t>(b->x.data[r * 3]));
  }
  for (std::size_t k = 0; k < combined.size(); ++k) {
    std::sort(combined[k].begin(), combined[k].end());
    std::sort(sharded[k].begin(), sharded[k].end());
    EXPECT_EQ(sharded[k], combined[k]) << "batch " << k;
  }
  // 50 rows over 3 ranks: padded to 51, every sample at least once, one repeated.
  const Dataset odd = numbered(50);
  std::vector<int> seen(50, 0);
  for (int rank = 0; rank < world; ++rank) {
    Loader shard(odd, Device::cpu(), {.batch_size = 5, .seed = 1, .rank = rank, .world = world});
    EXPECT_EQ(shard.rows_per_epoch(), 17);
    shard.start_epoch(0);
    while (auto b = shard.next())
      for (std::int64_t r = 0; r < b->rows; ++r) ++seen[static_cast<std::size_t>(b->x.data[r * 3])];
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), 0);
  EXPECT_EQ(std::accumulate(seen.begin(), seen.end(), 0), 51);
  EXPECT_THROW(Loader(odd, Device::cpu(), {.rank = 3, .world = 3}), Error);
}

// Note [parallel gather]: a team of threads writes the bytes one thread writes, for labels and
// for regression targets, whatever the split of rows over threads.
TEST(Loader, ParallelGatherWritesTheSerialBytes) {
  Dataset regression = numbered(97, 5);
  regression.labels.clear();
  regression.classes = 0;
  regression.target_width = 3;
  for (std::int64_t r = 0; r < regression.rows; ++r)
    regression.targets.insert(regression.targets.end(), {-1.0F * r, 0.5F * r, 2.0F * r});
  {
    const Dataset* d = &regression;
    for (const std::int64_t rows : {1, 7, 64, 97}) {
      std::vector<std::int64_t> order(static_cast<std::size_t>(d->rows));
      std::iota(order.rbegin(), order.rend(), 0);  // reversed: every row moves
      const std::size_t y_bytes = static_cast<std::size_t>(rows * d->target_width) * 4;
      std::vector<float> x1(static_cast<std::size_t>(rows * d->features), -7.0F), x4 = x1;
      std::vector<unsigned char> y1(y_bytes, 0xAB), y4 = y1;
      detail::gather_host(*d, order, 0, rows, x1.data(), y1.data(), 1);
      detail::gather_host(*d, order, 0, rows, x4.data(), y4.data(), 4);
      EXPECT_EQ(x4, x1) << rows;
      EXPECT_EQ(y4, y1) << rows;
      EXPECT_EQ(x1[0], static_cast<float>(d->rows - 1));  // the last row first
    }
  }
  const Dataset labelled = numbered(50, 4);
  std::vector<std::int64_t> order(50);
  std::iota(order.begin(), order.end(), 0);
  std::vector<float> x1(200), x4(200);
  std::vector<std::int32_t> y1(50, -1), y4(50, -1);
  detail::gather_host(labelled, order, 0, 50, x1.data(),
                      reinterpret_cast<unsigned char*>(y1.data()), 1);
  detail::gather_host(labelled, order, 0, 50, x4.data(),
                      reinterpret_cast<unsigned char*>(y4.data()), 4);
  EXPECT_EQ(x4, x1);
  EXPECT_EQ(y4, y1);
  EXPECT_EQ(y1[9], 9 % 7);
}

TEST(LoaderGpu, EverySampleOncePerEpochInSeededOrder) {
  CUTRAIN_REQUIRE_GPU();
  check_epochs(Device::cuda(0), 1003, 64, false);
  check_epochs(Device::cuda(0), 1003, 64, true);
  check_epochs(Device::cuda(0), 1003, 64, false, /*resident=*/true);
}

// Batches over 2^18 floats go through the parallel host gather (Note [parallel gather]): the
// GPU's streamed epoch equals the CPU's (one gathering thread), bit for bit.
TEST(LoaderGpu, LargeBatchesGatheredInParallelAreTheCpusBatches) {
  CUTRAIN_REQUIRE_GPU();
  const Dataset d = numbered(2500, 300);
  const LoaderOptions o{.batch_size = 1000, .shuffle = true, .seed = 11};
  const Epoch cpu = collect(d, Device::cpu(), o, 2, 0);
  const Epoch gpu = collect(d, Device::cuda(0), o, 2, 0);
  ASSERT_EQ(cpu.rows, (std::vector<std::int64_t>{1000, 1000, 500}));
  EXPECT_EQ(gpu, cpu);
}

// The GPU gather (16-byte rows of 8 floats, 4-byte rows of 3) against the CPU streaming loader.
TEST(LoaderGpu, ResidentBatchesAreTheStreamingOnes) {
  CUTRAIN_REQUIRE_GPU();
  check_resident_matches_streaming(Device::cuda(0));
}

}  // namespace
}  // namespace cutrain::data
