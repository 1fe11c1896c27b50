// Loader::start_epoch on an epoch abandoned mid-way (CUDA builds): the batch still held by the
// caller keeps its device buffer until the work queued on the compute stream is done with it.
// The compute stream is held back by a host callback while start_epoch lets the loader refill
// its slots; a copy of the held batch queued behind the callback must still see that batch.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/data.hpp"
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

}  // namespace
}  // namespace cutrain::data
