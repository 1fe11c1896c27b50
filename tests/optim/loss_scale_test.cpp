// Dynamic loss scaling in the step (Note [dynamic loss scale], cutrain/optim/step_control.hpp):
// scaled steps against unscaled ones bit for bit, GradScaler's state machine against its rules
// written out here, the unscaled-overflow check, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "cutrain/clip.hpp"
#include "cutrain/error.hpp"
#include "cutrain/optim.hpp"
#include "optim_fixture.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The golden gradient of step t, times s (a power of two: exact).
std::vector<float> grads_of(int t, float s) {
  std::vector<float> g(testing::kGoldenN);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = testing::golden_grad(t, i) * s;
  return g;
}

// GradScaler's update (torch/amp/grad_scaler.py, _amp_update_scale_), written out.
struct ReferenceScaler {
  float scale;
  int count = 0;
  int interval;
  void update(bool found_inf) {
    if (found_inf) {
      scale *= 0.5F;
      count = 0;
    } else if (++count == interval) {
      if (std::isfinite(scale * 2.0F)) scale *= 2.0F;
      count = 0;
    }
  }
};

std::unique_ptr<optim::AdamW> make_adamw(const Arena& p) {
  auto opt = std::make_unique<optim::AdamW>(
      p, optim::AdamOptions{.lr = 0.01F, .weight_decay = 0.05F, .amsgrad = true});
  opt->set_group(1, {0.5F, 0.0F});
  return opt;
}

// AdamW + clipping: gradients S x g with a growing S give, step for step, the parameters, moments,
// norms and clip factors of the unscaled run - bit for bit - and S follows GradScaler's rules.
void check_scaled_equals_unscaled(Device device, NormType type) {
  Arena p_ref = testing::golden_arena(device, true), p = testing::golden_arena(device, true);
  Arena g_ref = p_ref.like(), g = p.like();
  const auto ref_ptr = make_adamw(p_ref), opt_ptr = make_adamw(p);
  optim::AdamW &ref = *ref_ptr, &opt = *opt_ptr;
  opt.enable_loss_scaling({.init_scale = 1024.0F, .growth_interval = 3});
  // A max_norm that clips some steps and not others.
  GradClipper clip_ref(device, 3.0F, type), clip(device, 3.0F, type);
  ReferenceScaler want{1024.0F, 0, 3};
  for (int t = 0; t < 10; ++t) {
    ASSERT_EQ(opt.loss_scale_state().scale, want.scale) << "step " << t;
    testing::set_flat(g_ref, grads_of(t, 1.0F));
    testing::set_flat(g, grads_of(t, want.scale));
    ref.step(p_ref, g_ref, clip_ref);
    opt.step(p, g, clip);
    const float used = want.scale;
    want.update(false);
    ASSERT_EQ(clip.last_norm(), clip_ref.last_norm()) << "step " << t;
    ASSERT_EQ(clip.last_scale(), clip_ref.last_scale() / used)
        << "step " << t << ": the factor is clip x 1/S";
    ASSERT_EQ(testing::get_flat(p), testing::get_flat(p_ref)) << "step " << t;
  }
  const auto s_ref = ref.state(), s = opt.state();
  ASSERT_EQ(s.size(), s_ref.size());
  for (std::size_t k = 0; k < s.size(); ++k)
    EXPECT_EQ(testing::get_flat(*s[k].arena), testing::get_flat(*s_ref[k].arena)) << s[k].name;
  EXPECT_EQ(opt.applied_steps(), 10);
  EXPECT_EQ(opt.skipped_steps(), 0);
  EXPECT_EQ(opt.loss_scale_state().scale, 8192.0F);  // 2^10 grown at steps 3, 6 and 9
  EXPECT_EQ(opt.loss_scale_state().growth_count, 1);
}

// Non-finite scaled gradients: the step changes nothing but the counts and the scale, which
// halves; clean steps count towards growth again from zero.
void check_backoff(Device device) {
  Arena p = testing::golden_arena(device, true);
  Arena g = p.like();
  const auto opt_ptr = make_adamw(p);
  optim::AdamW& opt = *opt_ptr;
  opt.enable_loss_scaling({.init_scale = 65536.0F, .growth_interval = 2});
  GradClipper clip(device, kInf);
  ReferenceScaler want{65536.0F, 0, 2};
  std::int64_t applied = 0, skipped = 0;
  for (int t = 0; t < 9; ++t) {
    std::vector<float> grads = grads_of(t, want.scale);
    const bool bad = t == 2 || t == 5 || t == 6;
    if (t == 2) grads[17] = kInf;
    if (t == 5) grads[testing::kGoldenN - 1] = std::nanf("");
    if (t == 6) grads[0] = -kInf;
    testing::set_flat(g, grads);
    const std::vector<float> before = testing::get_flat(p);
    std::vector<std::vector<float>> states_before;
    for (const auto& s : opt.state()) states_before.push_back(testing::get_flat(*s.arena));
    opt.step(p, g, clip);
    want.update(bad);
    (bad ? skipped : applied) += 1;
    EXPECT_EQ(opt.applied_steps(), applied) << "step " << t;
    EXPECT_EQ(opt.skipped_steps(), skipped) << "step " << t;
    EXPECT_EQ(opt.loss_scale_state().scale, want.scale) << "step " << t;
    EXPECT_EQ(opt.loss_scale_state().growth_count, want.count) << "step " << t;
    EXPECT_EQ(clip.last_nonfinite(), bad) << "step " << t;
    if (bad) {
      EXPECT_EQ(testing::get_flat(p), before) << "step " << t;
      std::size_t k = 0;
      for (const auto& s : opt.state())
        EXPECT_EQ(testing::get_flat(*s.arena), states_before[k++]) << s.name << " step " << t;
    } else {
      EXPECT_NE(testing::get_flat(p), before) << "step " << t;
    }
  }
  // 2^16 -> 2^17 (step 1) -> 2^16 (2) -> 2^17 (4) -> 2^16 (5) -> 2^15 (6) -> 2^16 (8)
  EXPECT_EQ(want.scale, 65536.0F);
}

// S never grows to inf: at 2^127 a growth is dropped and the count still resets.
void check_no_growth_to_inf(Device device) {
  Arena p = testing::golden_arena(device, true);
  Arena g = p.like();
  optim::Sgd opt(p, {.lr = 0.1F});
  const float top = std::ldexp(1.0F, 127);
  opt.enable_loss_scaling({.init_scale = top, .growth_interval = 1});
  GradClipper clip(device, kInf);
  // Unscaled gradients of 2^-120 scale to 2^7: finite. Each step would double S.
  testing::set_flat(g, std::vector<float>(testing::kGoldenN, 128.0F));
  for (int t = 0; t < 3; ++t) opt.step(p, g, clip);
  EXPECT_EQ(opt.loss_scale_state().scale, top);
  EXPECT_EQ(opt.loss_scale_state().growth_count, 0);
  EXPECT_EQ(opt.skipped_steps(), 0);
  // The clipper saw g / S = 2^-120 exactly: the norm is sqrt(N) x 2^-120.
  const double n = static_cast<double>(testing::kGoldenN);
  EXPECT_EQ(clip.last_norm(), static_cast<float>(std::sqrt(n) * std::ldexp(1.0, -120)));
}

// With S < 1 a finite scaled gradient can unscale to inf: GradScaler's unscale_ finds that
// non-finite, and so does the clipper here - for the L2 and the infinity norm.
void check_unscaled_overflow(Device device, NormType type) {
  Arena p = testing::golden_arena(device, true);
  Arena g = p.like();
  optim::Sgd opt(p, {.lr = 0.1F});
  opt.enable_loss_scaling({.init_scale = 0.0625F, .growth_interval = 100});
  GradClipper clip(device, kInf, type);
  std::vector<float> grads = grads_of(0, 1.0F);
  grads[5] = std::ldexp(1.0F, 125);  // x 16 = 2^129: beyond FLT_MAX
  testing::set_flat(g, grads);
  opt.step(p, g, clip);
  EXPECT_TRUE(clip.last_nonfinite());
  EXPECT_EQ(opt.skipped_steps(), 1);
  EXPECT_EQ(opt.loss_scale_state().scale, 0.03125F);
  grads[5] = std::ldexp(1.0F, 100);  // x 32 = 2^105: fine
  testing::set_flat(g, grads);
  opt.step(p, g, clip);
  EXPECT_FALSE(clip.last_nonfinite());
  EXPECT_EQ(opt.applied_steps(), 1);
}

TEST(LossScale, ScaledStepsAreBitIdenticalToUnscaled) {
  check_scaled_equals_unscaled(Device::cpu(), NormType::kL2);
  check_scaled_equals_unscaled(Device::cpu(), NormType::kInf);
}
TEST(LossScale, NonFiniteGradientsHalveTheScaleAndChangeNothing) {
  check_backoff(Device::cpu());
}
TEST(LossScale, NeverGrowsToInfinity) {
  check_no_growth_to_inf(Device::cpu());
}
TEST(LossScale, UnscaledOverflowIsNonFinite) {
  check_unscaled_overflow(Device::cpu(), NormType::kL2);
  check_unscaled_overflow(Device::cpu(), NormType::kInf);
}

TEST(LossScale, RejectsWhatIsNotAPowerOfTwoAndStepsWithoutTheGuard) {
  Arena p = testing::golden_arena(Device::cpu(), true);
  Arena g = p.like();
  optim::Sgd opt(p, {.lr = 0.1F});
  const auto msg = [&](const optim::LossScaling& o) {
    return testing::error_of([&] { opt.enable_loss_scaling(o); });
  };
  EXPECT_NE(msg({.init_scale = 1000.0F}).find("init_scale = 1000"), std::string::npos);
  EXPECT_NE(msg({.init_scale = kInf}).find("init_scale"), std::string::npos);
  EXPECT_NE(msg({.init_scale = -2.0F}).find("init_scale"), std::string::npos);
  EXPECT_NE(msg({.growth_factor = 3.0F}).find("growth_factor = 3"), std::string::npos);
  EXPECT_NE(msg({.growth_factor = 0.5F}).find("growth_factor"), std::string::npos);
  EXPECT_NE(msg({.backoff_factor = 0.75F}).find("backoff_factor = 0.75"), std::string::npos);
  EXPECT_NE(msg({.backoff_factor = 1.0F}).find("backoff_factor"), std::string::npos);
  EXPECT_NE(msg({.growth_interval = 0}).find("growth_interval = 0"), std::string::npos);
  EXPECT_FALSE(opt.loss_scaling());
  EXPECT_EQ(opt.device_loss_scale(), nullptr);
  EXPECT_EQ(opt.loss_scale_state().scale, 1.0F);
  EXPECT_THROW(opt.set_loss_scale_state({2.0F, 0}), Error);  // not enabled

  opt.enable_loss_scaling({.growth_interval = 10});
  EXPECT_TRUE(opt.loss_scaling());
  EXPECT_EQ(*opt.device_loss_scale(), 65536.0F);  // CPU: host memory
  const std::string plain = testing::error_of([&] { opt.step(p, g); });
  EXPECT_NE(plain.find("clipper"), std::string::npos) << plain;
  EXPECT_THROW(opt.set_loss_scale_state({3.0F, 0}), Error);
  EXPECT_THROW(opt.set_loss_scale_state({4.0F, 10}), Error);
  EXPECT_THROW(opt.set_loss_scale_state({4.0F, -1}), Error);
  opt.set_loss_scale_state({0.25F, 9});
  EXPECT_EQ(opt.loss_scale_state().scale, 0.25F);
  EXPECT_EQ(opt.loss_scale_state().growth_count, 9);
  EXPECT_EQ(opt.applied_steps(), 0);  // the counts are not the scaler's
}

TEST(LossScaleGpu, ScaledStepsAreBitIdenticalToUnscaled) {
  CUTRAIN_REQUIRE_GPU();
  check_scaled_equals_unscaled(Device::cuda(0), NormType::kL2);
  check_scaled_equals_unscaled(Device::cuda(0), NormType::kInf);
}
TEST(LossScaleGpu, NonFiniteGradientsHalveTheScaleAndChangeNothing) {
  CUTRAIN_REQUIRE_GPU();
  check_backoff(Device::cuda(0));
}
TEST(LossScaleGpu, NeverGrowsToInfinity) {
  CUTRAIN_REQUIRE_GPU();
  check_no_growth_to_inf(Device::cuda(0));
}
TEST(LossScaleGpu, UnscaledOverflowIsNonFinite) {
  CUTRAIN_REQUIRE_GPU();
  check_unscaled_overflow(Device::cuda(0), NormType::kL2);
  check_unscaled_overflow(Device::cuda(0), NormType::kInf);
}

}  // namespace
}  // namespace cutrain
