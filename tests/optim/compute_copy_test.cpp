// Note [16-bit compute copy]: the fused step's 16-bit parameter copy - PyTorch's rounding of the
// master (Tensor.to(bfloat16 / float16), golden/half_rounding.json), the rule's stochastic bits,
// untouched by a skipped step, re-derived exactly on resume, and the GPU's equal to the CPU's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "cutrain/clip.hpp"
#include "cutrain/error.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/precision.hpp"
#include "kernels/common/half.cuh"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "support/random.hpp"

namespace cutrain {
namespace {

std::shared_ptr<const ArenaLayout> layout() {
  ArenaLayout::Builder b;
  b.add("w", {37, 29});
  b.add("b", {37}, 1);
  return b.build();
}

Arena random_arena(Device device, std::uint32_t seed, float sd) {
  return testing::normal_arena(layout(), device, seed, sd);
}

std::vector<std::uint16_t> copy_of(const optim::Optimizer& o) {
  std::vector<std::uint16_t> h(o.compute_copy().bytes() / 2);
  copy_bytes(h.data(), Device::cpu(), o.compute_copy().data(), o.device(),
             o.compute_copy().bytes());
  return h;
}

// What the copy must hold after `t` applied steps: each master value rounded by the rule.
std::vector<std::uint16_t> expected(const Arena& params, rules::Half kind, bool stochastic,
                                    std::uint64_t seed, std::uint64_t t) {
  const std::vector<float> p = params.to_host();
  std::vector<std::uint16_t> h(p.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    h[i] =
        rules::to_half(kind, p[i], stochastic, stochastic ? rules::rounding_bits(seed, t, i) : 0U);
  return h;
}

struct Outcome {
  std::vector<float> params;
  std::vector<std::uint16_t> copy;
};

// Three AdamW steps (two parameter groups, clipping, the last step's gradient non-finite).
Outcome train(Device device, Precision precision, Rounding rounding, bool check_each_step) {
  Arena params = random_arena(device, 1, 0.5F);
  optim::AdamW opt(params, {.lr = 0.01F, .weight_decay = 0.1F});
  opt.set_group(1, {0.5F, 0.0F});
  opt.enable_compute_copy(params, precision, rounding, 42);
  GradClipper clipper(device, 1.0F);
  const rules::Half kind = precision == Precision::kFp16 ? rules::Half::kFp16 : rules::Half::kBf16;
  const bool stochastic = rounding == Rounding::kStochastic;
  if (check_each_step) {
    EXPECT_EQ(copy_of(opt), expected(params, kind, stochastic, 42, 0)) << "the initial copy";
  }
  for (int t = 1; t <= 3; ++t) {
    Arena grads = random_arena(device, 10 + t, 2.0F);
    if (t == 3) {  // a non-finite gradient: the guard skips the step
      std::vector<float> g = grads.to_host();
      g[5] = std::numeric_limits<float>::infinity();
      grads.from_host(g);
    }
    const std::vector<std::uint16_t> before = copy_of(opt);
    opt.step(params, grads, clipper);
    if (!check_each_step) continue;
    if (t == 3) {
      EXPECT_EQ(copy_of(opt), before) << "a skipped step changed the copy";
    } else {
      EXPECT_EQ(copy_of(opt), expected(params, kind, stochastic, 42, static_cast<std::uint64_t>(t)))
          << "step " << t;
    }
  }
  return {params.to_host(), copy_of(opt)};
}

TEST(ComputeCopy, PyTorchRoundsTheMasterAsTheRuleDoes) {
  std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/half_rounding.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto floats = j.at("float_bits").get<std::vector<std::uint32_t>>();
  const auto bf16 = j.at("bf16_bits").get<std::vector<std::uint16_t>>();
  const auto fp16 = j.at("fp16_bits").get<std::vector<std::uint16_t>>();
  ASSERT_EQ(floats.size(), bf16.size());
  for (std::size_t i = 0; i < floats.size(); ++i) {
    const float x = rules::bits_float(floats[i]);
    EXPECT_EQ(rules::to_bf16(x), bf16[i]) << x;
    EXPECT_EQ(rules::to_fp16(x), fp16[i]) << x;
  }
}

TEST(ComputeCopy, EveryStepWritesTheRoundedMaster) {
  for (const Precision p : {Precision::kBf16, Precision::kFp16})
    for (const Rounding r : {Rounding::kNearestEven, Rounding::kStochastic})
      train(Device::cpu(), p, r, /*check_each_step=*/true);
}

TEST(ComputeCopy, StochasticBitsDifferFromNearest) {
  const Outcome nearest = train(Device::cpu(), Precision::kBf16, Rounding::kNearestEven, false);
  const Outcome stochastic = train(Device::cpu(), Precision::kBf16, Rounding::kStochastic, false);
  EXPECT_EQ(nearest.params, stochastic.params);  // the master does not see the rounding
  std::size_t differ = 0;
  for (std::size_t i = 0; i < nearest.copy.size(); ++i)
    differ += nearest.copy[i] != stochastic.copy[i];
  EXPECT_GT(differ, nearest.copy.size() / 10);
}

TEST(ComputeCopy, ResumeRederivesTheSameBits) {
  Arena params = random_arena(Device::cpu(), 1, 0.5F);
  optim::Adam a(params, {.lr = 0.01F});
  a.enable_compute_copy(params, Precision::kBf16, Rounding::kStochastic, 9);
  GradClipper clipper(Device::cpu(), 10.0F);
  for (int t = 1; t <= 2; ++t) a.step(params, random_arena(Device::cpu(), 20 + t, 1.0F), clipper);
  // A fresh optimizer on the same weights at the same step count: as a resumed run starts.
  optim::Adam b(params, {.lr = 0.01F});
  b.enable_compute_copy(params, Precision::kBf16, Rounding::kStochastic, 9);
  b.set_step_counts(a.applied_steps(), a.skipped_steps());
  b.refresh_compute_copy(params);
  EXPECT_EQ(copy_of(b), copy_of(a));
}

TEST(ComputeCopy, RefusesAThirtyTwoBitCopy) {
  Arena params = random_arena(Device::cpu(), 1, 0.5F);
  optim::Sgd opt(params, {.lr = 0.1F});
  EXPECT_NE(testing::error_of([&] {
              opt.enable_compute_copy(params, Precision::kFp32);
            }).find("a compute copy is 16-bit (bf16 or fp16), not fp32"),
            std::string::npos);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_NE(testing::error_of([] { parse_precision("fp8"); }).find("unknown precision 'fp8'"),
            std::string::npos);
}

// The GPU's copy equals the CPU's bit for bit: the fused clip step (a small arena) and the
// plain step both store it.
TEST(ComputeCopyGpu, MatchesTheCpuBitForBit) {
  CUTRAIN_REQUIRE_GPU();
  for (const Precision p : {Precision::kBf16, Precision::kFp16})
    for (const Rounding r : {Rounding::kNearestEven, Rounding::kStochastic}) {
      const Outcome cpu = train(Device::cpu(), p, r, false);
      const Outcome gpu = train(Device::cuda(0), p, r, true);
      EXPECT_EQ(gpu.copy, cpu.copy) << precision_name(p);
    }
}

}  // namespace
}  // namespace cutrain
