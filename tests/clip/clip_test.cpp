// Global norms against a float64 reference, determinism, the clip coefficient, clip by value,
// and the non-finite guard (NaN/Inf at random positions => nothing changes), CPU and GPU.
// Clipped training against PyTorch lives in tests/optim/golden_test.cpp (the clip_* cases).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cutrain/clip.hpp"
#include "cutrain/error.hpp"
#include "cutrain/optim.hpp"
#include "support/gpu.hpp"
#include "support/random.hpp"

namespace cutrain {
namespace {

std::shared_ptr<const ArenaLayout> layout() {
  ArenaLayout::Builder b;
  b.add("w1", {500, 301});
  b.add("b1", {301}, 1);
  b.add("w2", {7, 13});
  return b.build();
}

// Values spanning 1e-8 .. 1e4 with both signs, in every tensor; padding stays zero.
Arena awkward_grads(Device device, std::uint32_t seed = 3) {
  Arena a(layout(), Device::cpu());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> exponent(-8, 4), sign(-1, 1);
  for (const auto& t : a.layout().tensors()) {
    std::vector<float> v(t.numel);
    for (float& x : v) x = static_cast<float>(std::pow(10.0, exponent(rng)) * sign(rng));
    a.tensor_from_host(t.name, v);
  }
  return a.copy_to(device);
}

void check_norms(Device device) {
  const Arena g = awkward_grads(device);
  double sumsq = 0, maxabs = 0;
  for (const float x : g.to_host()) {
    sumsq += static_cast<double>(x) * x;
    maxabs = std::max(maxabs, std::fabs(static_cast<double>(x)));
  }
  EXPECT_NEAR(global_norm(g), std::sqrt(sumsq), 1.2e-7 * std::sqrt(sumsq));
  EXPECT_EQ(global_norm(g, NormType::kInf), maxabs);

  GradClipper clipper(device, 5.0F);
  Arena copy = g.copy_to(device);
  clipper.run(copy);
  const float norm = clipper.last_norm();
  EXPECT_FLOAT_EQ(clipper.last_scale(), std::min(1.0F, 5.0F / (norm + 1e-6F)));
  EXPECT_FALSE(clipper.last_nonfinite());
  EXPECT_EQ(copy.to_host(), g.to_host()) << "clipping must not rewrite the gradients";
  // Determinism: the same input gives the same bits, 100 times.
  for (int i = 0; i < 100; ++i) {
    clipper.run(copy);
    ASSERT_EQ(clipper.last_norm(), norm) << "run " << i;
  }
  GradClipper loose(device, 1e30F);
  loose.run(copy);
  EXPECT_EQ(loose.last_scale(), 1.0F);
}

TEST(Clip, NormsMatchFloat64AndAreDeterministic) {
  check_norms(Device::cpu());
}

TEST(Clip, RejectsBadSettings) {
  EXPECT_THROW(GradClipper(Device::cpu(), -1.0F), Error);
  EXPECT_THROW(GradClipper(Device::cpu(), 0.0F), Error);
  EXPECT_THROW(GradClipper(Device::cpu(), std::nanf("")), Error);
  EXPECT_THROW(GradClipper(Device::cpu(), 1.0F, static_cast<NormType>(7)), Error);
  try {
    parse_norm_type("3");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported norm type '3'"), std::string::npos);
  }
  EXPECT_EQ(parse_norm_type("inf"), NormType::kInf);
  Arena g = awkward_grads(Device::cpu());
  EXPECT_THROW(clip_by_value(g, -1.0F), Error);
  Arena empty;
  GradClipper c(Device::cpu(), 1.0F);
  EXPECT_THROW(c.run(empty), Error);
}

void check_clip_by_value(Device device) {
  Arena g = awkward_grads(device);
  std::vector<float> host = g.to_host();
  host[5] = std::numeric_limits<float>::quiet_NaN();
  g.from_host(host);
  clip_by_value(g, 0.5F);
  const auto out = g.to_host();
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i == 5) {
      EXPECT_TRUE(std::isnan(out[i])) << "NaN must survive for the guard";
      continue;
    }
    ASSERT_EQ(out[i], std::clamp(host[i], -0.5F, 0.5F)) << i;
  }
}

TEST(Clip, ClipByValueClampsAndKeepsNaN) {
  check_clip_by_value(Device::cpu());
}

// NaN or Inf at random positions: the step is skipped on the device, parameters and every
// state stay bit-identical, the skip counter counts, and the norm reports the non-finite value.
void check_nonfinite_guard(Device device) {
  Arena params = awkward_grads(device, 11);
  Arena grads = awkward_grads(device, 12);
  optim::Adam opt(params, {.lr = 0.01F, .weight_decay = 0.1F, .amsgrad = true});
  GradClipper clipper(device, 1.0F);
  opt.step(params, grads, clipper.run(grads));  // one real step: non-zero state
  const auto p0 = params.to_host();
  std::vector<std::vector<float>> s0;
  for (const auto& s : opt.state()) s0.push_back(s.arena->to_host());

  std::mt19937 rng(5);
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<float> g = grads.to_host();
    const auto& t = grads.layout().tensors()[trial % 3];
    const std::size_t pos = t.offset + rng() % t.numel;
    g[pos] = bad[trial % 3];
    Arena poisoned = grads.like();
    poisoned.from_host(g);
    opt.step(params, poisoned, clipper.run(poisoned));
    EXPECT_TRUE(clipper.last_nonfinite()) << "trial " << trial;
    EXPECT_FALSE(std::isfinite(clipper.last_norm()));
  }
  EXPECT_EQ(params.to_host(), p0);
  for (std::size_t k = 0; k < s0.size(); ++k)
    EXPECT_EQ(opt.state()[k].arena->to_host(), s0[k]) << opt.state()[k].name;
  EXPECT_EQ(opt.applied_steps(), 1);
  EXPECT_EQ(opt.skipped_steps(), 6);
  // The guard alone (no clipping) with max_norm = +inf.
  GradClipper guard_only(device, std::numeric_limits<float>::infinity());
  opt.step(params, grads, guard_only.run(grads));
  EXPECT_EQ(guard_only.last_scale(), 1.0F);
  EXPECT_EQ(opt.applied_steps(), 2);
  EXPECT_NE(params.to_host(), p0);
}

TEST(Clip, NonFiniteGradientsSkipTheStep) {
  check_nonfinite_guard(Device::cpu());
}

TEST(ClipGpu, NormsMatchFloat64AndAreDeterministic) {
  CUTRAIN_REQUIRE_GPU();
  check_norms(Device::cuda(0));
}
TEST(ClipGpu, ClipByValueClampsAndKeepsNaN) {
  CUTRAIN_REQUIRE_GPU();
  check_clip_by_value(Device::cuda(0));
}
TEST(ClipGpu, NonFiniteGradientsSkipTheStep) {
  CUTRAIN_REQUIRE_GPU();
  check_nonfinite_guard(Device::cuda(0));
}
TEST(ClipGpu, NormAgreesWithCpu) {
  CUTRAIN_REQUIRE_GPU();
  const Arena c = awkward_grads(Device::cpu());
  const Arena g = c.copy_to(Device::cuda(0));
  EXPECT_NEAR(global_norm(g), global_norm(c), 1.2e-7 * global_norm(c));
  EXPECT_EQ(global_norm(g, NormType::kInf), global_norm(c, NormType::kInf));
}

}  // namespace
}  // namespace cutrain
