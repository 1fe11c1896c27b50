// Optimizer::step(params, grads, clipper): the same result as clipper.run() then step() - bit for
// bit on the CPU (the same loops), and on the GPU to the last bit of the norm when the norm and
// the step run as one launch (Note [clip and step in one launch]: the norm's partition follows
// that kernel's grid), exactly when the arena is too large for it and the two launches run. The
// non-finite guard, the step counters, the clipper's results and the per-step norm record must
// be what the two-call path leaves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/clip.hpp"
#include "cutrain/error.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/stream.hpp"
#include "support/gpu.hpp"
#include "support/random.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/optim/optim.hpp"
#endif

namespace cutrain {
namespace {

// `layers` linear layers of width x width (weights in group 0, biases in group 1).
std::shared_ptr<const ArenaLayout> mlp(int layers, std::int64_t width) {
  ArenaLayout::Builder b;
  for (int i = 0; i < layers; ++i) {
    b.add("layers." + std::to_string(i) + ".weight", {width, width});
    b.add("layers." + std::to_string(i) + ".bias", {width}, 1);
  }
  return b.build();
}

Arena random_arena(const std::shared_ptr<const ArenaLayout>& layout, Device device,
                   std::uint32_t seed, float sd) {
  return testing::normal_arena(layout, device, seed, sd);
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(const Arena&)>;

struct Named {
  const char* name;
  MakeOptimizer make;
};

std::vector<Named> optimizers() {
  return {
      {"Adam",
       [](const Arena& p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions{}); }},
      {"AdamW amsgrad",
       [](const Arena& p) {
         return std::make_unique<optim::AdamW>(
             p, optim::AdamOptions{.lr = 1e-2F, .weight_decay = 0.1F, .amsgrad = true});
       }},
      {"SGD nesterov",
       [](const Arena& p) {
         return std::make_unique<optim::Sgd>(
             p, optim::SgdOptions{.lr = 0.1F, .momentum = 0.9F, .nesterov = true});
       }},
      {"RMSprop centered momentum",
       [](const Arena& p) {
         return std::make_unique<optim::Rmsprop>(
             p, optim::RmspropOptions{.lr = 1e-2F, .momentum = 0.5F, .centered = true});
       }},
      {"Adagrad",
       [](const Arena& p) {
         return std::make_unique<optim::Adagrad>(p, optim::AdagradOptions{.lr = 0.1F});
       }},
  };
}

struct Run {
  std::vector<std::vector<float>> params;  // after each step
  std::vector<float> norms;                // the per-step records
  std::vector<std::vector<float>> state;
  std::int64_t applied = 0, skipped = 0;
  float last_norm = 0, last_scale = 0;
  bool last_nonfinite = false;
};

// Three clipped steps, the second with a NaN gradient when `nan_step` (the guard skips it).
Run train(Device device, const std::shared_ptr<const ArenaLayout>& layout,
          const MakeOptimizer& make, bool fused, bool nan_step) {
  Stream stream(device);
  Arena params = random_arena(layout, device, 1, 0.05F);
  auto opt = make(params);
  GradClipper clipper(device, 1.0F);
  Buffer norms(3 * sizeof(float), device);
  Run out;
  for (int step = 0; step < 3; ++step) {
    Arena grads = random_arena(layout, device, 10 + static_cast<std::uint32_t>(step), 0.1F);
    if (nan_step && step == 1) {
      std::vector<float> g = grads.to_host();
      g[g.size() / 3] = std::numeric_limits<float>::quiet_NaN();
      grads.from_host(g);
    }
    float* norm_out = norms.as<float>() + step;
    if (fused) {
      opt->step(params, grads, clipper, stream.native(), norm_out);
    } else {
      const optim::StepGuard guard = clipper.run(grads, stream.native(), norm_out);
      opt->step(params, grads, guard, stream.native());
    }
    stream.synchronize();
    out.params.push_back(params.to_host());
  }
  out.norms.resize(3);
  copy_bytes(out.norms.data(), Device::cpu(), norms.data(), device, 3 * sizeof(float));
  for (const optim::NamedState& s : opt->state()) out.state.push_back(s.arena->to_host());
  out.applied = opt->applied_steps();
  out.skipped = opt->skipped_steps();
  out.last_norm = clipper.last_norm();
  out.last_scale = clipper.last_scale();
  out.last_nonfinite = clipper.last_nonfinite();
  return out;
}

// Element-wise within `rel` of the reference's scale (exact when rel == 0).
void expect_near(const std::vector<float>& got, const std::vector<float>& want, double rel,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (rel == 0) {
      ASSERT_EQ(got[i], want[i]) << what << " element " << i;
    } else {
      ASSERT_NEAR(got[i], want[i], rel * (std::fabs(want[i]) + 1e-3)) << what << " element " << i;
    }
  }
}

void compare(const Run& fused, const Run& two, double rel, bool nan_step, const std::string& what) {
  for (std::size_t s = 0; s < fused.params.size(); ++s)
    expect_near(fused.params[s], two.params[s], rel,
                what + " params after step " + std::to_string(s));
  ASSERT_EQ(fused.state.size(), two.state.size());
  for (std::size_t k = 0; k < fused.state.size(); ++k)
    expect_near(fused.state[k], two.state[k], rel, what + " state " + std::to_string(k));
  EXPECT_EQ(fused.applied, nan_step ? 2 : 3) << what;
  EXPECT_EQ(fused.applied, two.applied) << what;
  EXPECT_EQ(fused.skipped, two.skipped) << what;
  for (int s = 0; s < 3; ++s) {
    if (nan_step && s == 1) {
      EXPECT_TRUE(std::isnan(fused.norms[1])) << what;
      // Skipped: nothing changed.
      EXPECT_EQ(fused.params[1], fused.params[0]) << what;
      continue;
    }
    EXPECT_NEAR(fused.norms[static_cast<std::size_t>(s)], two.norms[static_cast<std::size_t>(s)],
                (rel == 0 ? 0.0 : 4e-7) * two.norms[static_cast<std::size_t>(s)])
        << what << " norm of step " << s;
  }
  EXPECT_NEAR(fused.last_norm, two.last_norm, (rel == 0 ? 0.0 : 4e-7) * two.last_norm) << what;
  EXPECT_NEAR(fused.last_scale, two.last_scale, (rel == 0 ? 0.0 : 4e-7) * two.last_scale) << what;
  EXPECT_LT(fused.last_scale, 1.0F) << what << ": the test must clip";
  EXPECT_EQ(fused.last_nonfinite, two.last_nonfinite) << what;
}

void check(Device device, const std::shared_ptr<const ArenaLayout>& layout, double rel,
           bool nan_step) {
  for (const Named& o : optimizers()) {
    const Run fused = train(device, layout, o.make, true, nan_step);
    const Run two = train(device, layout, o.make, false, nan_step);
    compare(fused, two, rel, nan_step, std::string(o.name) + " on " + device.str());
  }
}

TEST(ClipStep, CpuIsRunThenStepBitForBit) {
  check(Device::cpu(), mlp(3, 40), 0.0, false);
  check(Device::cpu(), mlp(3, 40), 0.0, true);
}

// A gradient arena of another layout is refused before anything runs: no norm, no step.
TEST(ClipStep, RefusesMismatchedArenasAndChangesNothing) {
  Arena params = random_arena(mlp(2, 8), Device::cpu(), 1, 1.0F);
  const Arena grads = random_arena(mlp(3, 8), Device::cpu(), 2, 1.0F);
  const std::vector<float> before = params.to_host();
  optim::Adam opt(params, {});
  GradClipper clipper(Device::cpu(), 1.0F);
  EXPECT_THROW(opt.step(params, grads, clipper), Error);
  EXPECT_EQ(params.to_host(), before);
  EXPECT_EQ(opt.issued_steps(), 0);
  EXPECT_EQ(clipper.last_norm(), 0.0F) << "the clipper ran";
}

#if CUTRAIN_WITH_CUDA
// A few thousand parameters (one block), ~700K (R = 2 vectors per thread on an H100) and the
// 1M/20-tensor shape of issue 9 (316 x 316 x 10 layers, R = 2 or 4): each path's results against
// the two launches; the last bit of the norm may differ. By default ("auto") the one launch runs
// only for small arenas (Note [clip and step in one launch]: slower than two launches from 2^19
// parameters on the H100), so the 700K and 1M sets take two launches on any GPU; with the cap
// set to 2 or 4 vectors per thread they take one where they fit (132 SMs do, fewer may not:
// reported, not required).
struct MaxVectors {
  explicit MaxVectors(int r) : saved(kernels::fused_clip_step_max_vectors()) {
    kernels::set_fused_clip_step_max_vectors(r);
  }
  ~MaxVectors() { kernels::set_fused_clip_step_max_vectors(saved); }
  MaxVectors(const MaxVectors&) = delete;
  MaxVectors& operator=(const MaxVectors&) = delete;
  int saved;
};

bool fused_check(const std::shared_ptr<const ArenaLayout>& layout, bool nan_step) {
  const std::int64_t before = kernels::fused_clip_step_launches();
  check(Device::cuda(0), layout, 2e-6, nan_step);
  return kernels::fused_clip_step_launches() > before;
}

TEST(ClipStepGpu, OneLaunchMatchesTwoLaunches) {
  CUTRAIN_REQUIRE_GPU();
  const MaxVectors automatic(kernels::kFusedClipStepAuto);
  const auto small = mlp(3, 40);
  EXPECT_TRUE(fused_check(small, false)) << small->total() << " parameters: two launches";
  EXPECT_TRUE(fused_check(small, true));
  const auto mid = mlp(7, 316);
  const auto million = mlp(10, 316);
  EXPECT_FALSE(fused_check(mid, false)) << "auto: one launch for " << mid->total();
  EXPECT_FALSE(fused_check(million, false)) << "auto: one launch for " << million->total();
  bool mid_fused = false;
  bool million_fused = false;
  {
    const MaxVectors two(2);
    mid_fused = fused_check(mid, false) && fused_check(mid, true);
  }
  {
    const MaxVectors four(4);
    million_fused = fused_check(million, false) && fused_check(million, true);
  }
  RecordProperty("one_launch_at_700k_with_r2", mid_fused ? "yes" : "no");
  RecordProperty("one_launch_at_1M_with_r4", million_fused ? "yes" : "no");
  std::printf("clip step on %zu parameters with R = 2: %s; on %zu with R = 4: %s\n", mid->total(),
              mid_fused ? "one launch" : "two launches", million->total(),
              million_fused ? "one launch" : "two launches (no fit on this GPU's grid)");
}

TEST(ClipStepGpu, CapOfZeroRunsTwoLaunchesAndBadCapsAreRefused) {
  CUTRAIN_REQUIRE_GPU();
  {
    const MaxVectors off(0);
    EXPECT_FALSE(fused_check(mlp(3, 40), false));
  }
  EXPECT_THROW(kernels::set_fused_clip_step_max_vectors(3), Error);
  EXPECT_THROW(kernels::set_fused_clip_step_max_vectors(-3), Error);
}

// 4.2M parameters do not fit one resident grid's registers (about 1.1M on an H100's 132 SMs):
// the two launches run, so the result is the two-call path's exactly.
TEST(ClipStepGpu, LargeArenasRunTheTwoLaunches) {
  CUTRAIN_REQUIRE_GPU();
  const std::int64_t before = kernels::fused_clip_step_launches();
  check(Device::cuda(0), mlp(4, 1024), 0.0, true);
  EXPECT_EQ(kernels::fused_clip_step_launches(), before);
}

// Note [replicas reduce alike]: a replicated clipper (data-parallel ranks) never takes the one
// launch, whose partition of the arena follows the device's residency; its step equals the
// two-call path (norm, then step) bit for bit.
TEST(ClipStepGpu, ReplicatedClipperRunsTheTwoLaunches) {
  CUTRAIN_REQUIRE_GPU();
  const MaxVectors automatic(kernels::kFusedClipStepAuto);
  const Device gpu = Device::cuda(0);
  const auto layout = mlp(3, 40);  // small: auto takes the one launch unless replicated
  Arena a = random_arena(layout, gpu, 1, 1.0F);
  Arena b = random_arena(layout, gpu, 1, 1.0F);
  const Arena grads = random_arena(layout, gpu, 2, 3.0F);
  optim::Adam oa(a, {.lr = 0.01F});
  optim::Adam ob(b, {.lr = 0.01F});
  GradClipper replicated(gpu, 1.0F);
  replicated.set_replicated(true);
  GradClipper separate(gpu, 1.0F);
  const std::int64_t before = kernels::fused_clip_step_launches();
  oa.step(a, grads, replicated);
  EXPECT_EQ(kernels::fused_clip_step_launches(), before) << "a replicated clipper fused";
  ob.step(b, grads, separate.run(grads));
  EXPECT_EQ(a.to_host(), b.to_host());
  EXPECT_EQ(replicated.last_norm(), separate.last_norm());
}

// The same gradients give the same norm bits on two GPUs (of any models): the norm kernel's
// grid depends on the arena's size alone.
TEST(ClipStepGpu, TwoGpusComputeTheSameNorm) {
  CUTRAIN_REQUIRE_GPUS(2);
  for (const auto& layout : {mlp(3, 40), mlp(10, 316), mlp(4, 1024)}) {
    float norms[2] = {0, 0};
    for (int d = 0; d < 2; ++d) {
      const Arena grads = random_arena(layout, Device::cuda(d), 7, 1.0F);
      GradClipper clipper(Device::cuda(d), 1.0F);
      clipper.set_replicated(true);
      clipper.run(grads);
      norms[d] = clipper.last_norm();
    }
    EXPECT_EQ(norms[0], norms[1]) << layout->total() << " parameters";
  }
}
#endif

}  // namespace
}  // namespace cutrain
