// The optimizer step on a CUDA stream: replayed from a captured graph (Note [device step
// counter]) and read back after the stream that wrote it (Note [read after the writing stream]).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "cutrain/clip.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/stream.hpp"
#include "optim_fixture.hpp"
#include "support/gpu.hpp"
#if CUTRAIN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cutrain {
namespace {

using testing::golden_arena;
using testing::set_golden_grads;

#if CUTRAIN_WITH_CUDA
void hold_until_released(void* flag) {  // CUDA's callback thread: no CUDA calls here
  while (!static_cast<std::atomic<bool>*>(flag)->load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// Note [device step counter]: the counts are updated in place on the device, so ONE captured step
// replayed N times - N odd or even - advances t, the bias corrections and the skip count as N
// eager steps do, and a skip flag and a learning rate written between replays are honoured (what
// the whole-step graph relies on). The reference takes the same steps eagerly on the same stream.
TEST(OptimizerGpu, CapturedStepReplaysLikeEagerSteps) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  Arena params = golden_arena(gpu), reference = golden_arena(gpu);
  Arena grads = params.like();
  set_golden_grads(grads, 1);
  optim::Adam opt(params, {.lr = 0.01F, .amsgrad = true});
  optim::Adam ref(reference, {.lr = 0.01F, .amsgrad = true});
  Buffer flag(sizeof(std::int32_t), gpu);
  auto set_flag = [&](std::int32_t v) {
    copy_bytes(flag.data(), gpu, &v, Device::cpu(), sizeof(v));
  };
  set_flag(0);
  const optim::StepGuard guard{.skip = flag.as<std::int32_t>()};
  Stream s(gpu);
  auto* cs = static_cast<cudaStream_t>(s.native());
  opt.step(params, grads, guard, s.native());  // outside the capture: the launch-shape cache
  ref.step(reference, grads, guard, s.native());
  s.synchronize();
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(cs, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  opt.step(params, grads, guard, s.native());
  ASSERT_EQ(cudaStreamEndCapture(cs, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  float lr = 0.01F;
  auto both = [&] {  // a new lr each time, committed between replays
    lr *= 0.75F;
    opt.set_lr(lr);
    opt.commit_lr(s.native());
    ASSERT_EQ(cudaGraphLaunch(exec, cs), cudaSuccess);
    ref.set_lr(lr);
    ref.step(reference, grads, guard, s.native());
    s.synchronize();
  };
  for (int i = 0; i < 3; ++i) both();
  set_flag(1);  // between replays, as a host-decided value would be
  both();
  set_flag(0);
  both();
  EXPECT_EQ(params.to_host(), reference.to_host());
  for (std::size_t k = 0; k < opt.state().size(); ++k)
    EXPECT_EQ(opt.state()[k].arena->to_host(), ref.state()[k].arena->to_host());
  EXPECT_EQ(opt.applied_steps(), 5);  // the eager warm-up, three replays, the last replay
  EXPECT_EQ(opt.skipped_steps(), 1);
  EXPECT_EQ(ref.applied_steps(), 5);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// Note [read after the writing stream]: a skipped step issued on a non-blocking stream that is
// held back; the counters read right after must wait for it (a plain copy on the default stream
// would return the count from before the step), and so must the loss.
TEST(OptimizerGpu, CountersAndLossAreReadAfterTheirStream) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  Arena params = golden_arena(gpu);
  Arena grads = params.like();
  std::vector<float> g(grads.total(), 0.5F);
  g[3] = std::numeric_limits<float>::infinity();  // the guard skips this step
  grads.from_host(g);
  optim::Adam opt(params, {.lr = 0.1F});
  GradClipper clipper(gpu, 1.0F);
  Stream s(gpu);
  std::atomic<bool> release{false};
  ASSERT_EQ(cudaLaunchHostFunc(s.native(), hold_until_released, &release), cudaSuccess);
  opt.step(params, grads, clipper, s.native());
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    release = true;
  });
  const std::int64_t skipped = opt.skipped_steps();
  releaser.join();
  EXPECT_EQ(skipped, 1) << "read before the step on its stream ran";
  EXPECT_EQ(opt.applied_steps(), 0);

  // The loss: computed behind a hold, read at once.
  nn::SoftmaxCrossEntropy loss;
  Buffer logits(2 * 3 * sizeof(float), gpu);
  const std::vector<float> host_logits{0, 0, 0, 0, 0, 0};  // uniform: loss = ln 3
  copy_bytes(logits.data(), gpu, host_logits.data(), Device::cpu(), 6 * sizeof(float));
  Buffer labels(2 * sizeof(std::int32_t), gpu);
  const std::int32_t host_labels[2] = {0, 2};
  copy_bytes(labels.data(), gpu, host_labels, Device::cpu(), sizeof(host_labels));
  release = false;
  ASSERT_EQ(cudaLaunchHostFunc(s.native(), hold_until_released, &release), cudaSuccess);
  loss.compute(nn::Matrix{logits.as<float>(), 2, 3, gpu}, labels.as<std::int32_t>(), nullptr,
               s.native());
  std::thread releaser2([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    release = true;
  });
  const float value = loss.value();
  releaser2.join();
  EXPECT_NEAR(value, std::log(3.0F), 1e-6F) << "read before the loss on its stream ran";
}
#endif

}  // namespace
}  // namespace cutrain
