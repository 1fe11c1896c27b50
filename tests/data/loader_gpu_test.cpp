// The loader on a GPU (CUDA builds). A batch handed out on a stream keeps its device buffer until
// the work queued on that stream is done with it - when the epoch is abandoned, and when the
// caller takes the next batch on another stream. The stream is held back by a host callback while
// the loader refills its slots; a copy of the held batch queued behind the callback must still
// see that batch. On two GPUs: the loader works on cuda:1 from a thread whose device is 0, and
// opens no context on GPU 0 (Note [no context on device 0]).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/data.hpp"
#include "cutrain/error.hpp"
#include "cutrain/stream.hpp"
#include "support/gpu.hpp"

namespace cutrain::data {
namespace {

void hold_until_released(void* flag) {  // runs on CUDA's callback thread: no CUDA calls here
  while (!static_cast<std::atomic<bool>*>(flag)->load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(LoaderGpu, AbandonedEpochsHeldBatchIsFenced) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  Dataset d;
  d.rows = 4096;
  d.features = 64;
  d.classes = 10;
  for (std::int64_t r = 0; r < d.rows; ++r) {
    for (std::int64_t f = 0; f < d.features; ++f) d.x.push_back(static_cast<float>(r * 100 + f));
    d.labels.push_back(static_cast<std::int32_t>(r % 10));
  }
  Stream compute(gpu);
  Loader loader(d, gpu, {.batch_size = 256, .seed = 3, .prefetch = 2});
  loader.start_epoch(0);
  const auto b = loader.next(compute.native());
  ASSERT_TRUE(b.has_value());
  const std::size_t bytes = b->x.size() * sizeof(float);
  std::vector<float> want(b->x.size()), got(b->x.size());
  copy_bytes(want.data(), Device::cpu(), b->x.data, gpu, bytes, compute.native());
  compute.synchronize();

  Buffer out(bytes, gpu);  // before the hold: freeing memory waits for the device
  std::atomic<bool> release{false};
  struct Release {  // the stream is let go whatever happens below
    std::atomic<bool>& flag;
    ~Release() { flag = true; }
  } let_go{release};
  ASSERT_EQ(cudaLaunchHostFunc(compute.native(), hold_until_released, &release), cudaSuccess);
  copy_bytes(out.data(), gpu, b->x.data, gpu, bytes, compute.native());  // behind the hold
  loader.start_epoch(1);  // abandons epoch 0 with the batch held
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the loader refills its slots
  release = true;
  compute.synchronize();
  copy_bytes(got.data(), Device::cpu(), out.data(), gpu, bytes);
  EXPECT_EQ(got, want) << "the held batch was overwritten before the compute stream used it";
  EXPECT_TRUE(loader.next(compute.native()).has_value());  // the new epoch runs
}

Dataset numbered(std::int64_t rows, std::int64_t features) {
  Dataset d;
  d.rows = rows;
  d.features = features;
  d.classes = 10;
  for (std::int64_t r = 0; r < d.rows; ++r) {
    for (std::int64_t f = 0; f < d.features; ++f) d.x.push_back(static_cast<float>(r * 100 + f));
    d.labels.push_back(static_cast<std::int32_t>(r % 10));
  }
  return d;
}

// Takes batch 0 on stream A and queues a copy of it behind a hold on A; then takes the following
// batches on stream B, which hands batch 0's buffer back to the loader. The buffer must not be
// refilled before A's copy ran (the release is recorded on A, the stream that used the batch).
void check_alternating_streams(bool resident) {
  const Device gpu = Device::cuda(0);
  const Dataset d = numbered(4096, 64);
  Stream a(gpu), b(gpu);
  Loader loader(d, gpu, {.batch_size = 256, .seed = 5, .prefetch = 2, .resident = resident});
  loader.start_epoch(0);
  const auto first = loader.next(a.native());
  ASSERT_TRUE(first.has_value());
  const std::size_t bytes = first->x.size() * sizeof(float);
  std::vector<float> want(first->x.size()), got(first->x.size());
  copy_bytes(want.data(), Device::cpu(), first->x.data, gpu, bytes, a.native());
  a.synchronize();
  Buffer out(bytes, gpu);
  std::atomic<bool> release{false};
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = true; }
  } let_go{release};
  ASSERT_EQ(cudaLaunchHostFunc(a.native(), hold_until_released, &release), cudaSuccess);
  copy_bytes(out.data(), gpu, first->x.data, gpu, bytes, a.native());            // behind the hold
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(loader.next(b.native()).has_value());  // on B
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the loader refills its slots
  release = true;
  a.synchronize();
  b.synchronize();
  copy_bytes(got.data(), Device::cpu(), out.data(), gpu, bytes);
  EXPECT_EQ(got, want) << "batch 0 was overwritten while stream A still had to read it";
}

TEST(LoaderGpu, ReleaseWaitsForTheStreamThatUsedTheBatch) {
  CUTRAIN_REQUIRE_GPU();
  check_alternating_streams(/*resident=*/false);
}

TEST(LoaderGpu, ResidentReleaseWaitsForTheStreamThatUsedTheBatch) {
  CUTRAIN_REQUIRE_GPU();
  check_alternating_streams(/*resident=*/true);
}

// Whether GPU `ordinal` has an active primary context (cuDevicePrimaryCtxGetState through the
// runtime's driver entry point).
bool context_active(int ordinal) {
  using GetState = int (*)(int, unsigned int*, int*);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &fn, 12000, cudaEnableDefault,
                                       &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess)
    throw Error("cuDevicePrimaryCtxGetState is not available");
  unsigned int flags = 0;
  int active = 0;
  if (reinterpret_cast<GetState>(fn)(ordinal, &flags, &active) != 0)
    throw Error("cuDevicePrimaryCtxGetState failed");
  return active != 0;
}

// Both loaders on cuda:1, driven from a thread that never chose a device (its device reads 0):
// the batches are right (the resident gathers run on GPU 1), and GPU 0 gets no context - not
// from a guard restoring "device 0", not from the worker's copies, not from pinned memory.
TEST(LoaderGpu, SecondGpuWorksAndLeavesGpuZeroAlone) {
  CUTRAIN_REQUIRE_GPUS(2);
  if (context_active(0)) GTEST_SKIP() << "GPU 0 already has a context in this process";
  const Device gpu1 = Device::cuda(1);
  const Dataset d = numbered(1000, 32);
  for (const bool resident : {false, true}) {
    Stream s(gpu1);
    Loader loader(d, gpu1, {.batch_size = 100, .seed = 9, .resident = resident});
    Loader reference(d, Device::cpu(), {.batch_size = 100, .seed = 9});  // the same order
    loader.start_epoch(0);
    reference.start_epoch(0);
    std::int64_t k = 0;
    while (const auto b = loader.next(s.native())) {
      const auto want = reference.next();
      ASSERT_TRUE(want.has_value());
      std::vector<float> x(b->x.size());
      copy_bytes(x.data(), Device::cpu(), b->x.data, gpu1, x.size() * sizeof(float), s.native());
      s.synchronize();
      ASSERT_EQ(x, std::vector<float>(want->x.data, want->x.data + want->x.size()))
          << (resident ? "resident" : "streamed") << " batch " << k;
      ++k;
    }
    EXPECT_EQ(k, 10);
  }
  EXPECT_FALSE(context_active(0)) << "working on cuda:1 opened a context on GPU 0";
}

}  // namespace
}  // namespace cutrain::data
