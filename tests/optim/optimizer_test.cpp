// Behaviour of the optimizer machinery beyond the goldens: bad input, state save/restore,
// the device-side gradient scale and skip flag, step counters, and RMSProp-Nesterov against the
// Deep Learning book's Algorithm 8.6.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cutrain/error.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/stream.hpp"
#include "optim_fixture.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

using optim::AdamOptions;

using testing::golden_arena;
using testing::set_golden_grads;

TEST(Optimizer, RejectsInvalidHyperparametersAtConstruction) {
  const Arena p = golden_arena();
  auto msg = [&](auto make) { return testing::error_of([&] { make(); }); };
  EXPECT_NE(msg([&] { optim::Sgd(p, {.lr = -1}); }).find("lr = -1"), std::string::npos);
  EXPECT_NE(msg([&] { optim::Sgd(p, {.lr = 0.1F, .momentum = -0.5F}); }).find("momentum"),
            std::string::npos);
  EXPECT_NE(msg([&] { optim::Sgd(p, {.lr = 0.1F, .nesterov = true}); }).find("nesterov"),
            std::string::npos);
  EXPECT_THROW(optim::Sgd(p, {.lr = 0.1F, .momentum = 0.9F, .dampening = 0.1F, .nesterov = true}),
               Error);
  EXPECT_THROW(optim::Sgd(p, {.lr = 0.1F, .weight_decay = -1}), Error);
  EXPECT_THROW(optim::Sgd(p, {.lr = std::nanf("")}), Error);
  const std::string beta = msg([&] { optim::Adam(p, {.beta1 = 1.0F}); });
  EXPECT_NE(beta.find("beta1 = 1"), std::string::npos) << beta;
  EXPECT_NE(beta.find("[0, 1)"), std::string::npos) << beta;
  EXPECT_THROW(optim::Adam(p, {.beta2 = -0.1F}), Error);
  EXPECT_THROW(optim::AdamW(p, {.eps = 0.0F}), Error);
  EXPECT_THROW(optim::Adagrad(p, {.lr_decay = -1}), Error);
  EXPECT_THROW(optim::Adagrad(p, {.initial_accumulator_value = -1}), Error);
  EXPECT_THROW(optim::Adagrad(p, {.eps = -1e-10F}), Error);
  EXPECT_THROW(optim::Rmsprop(p, {.alpha = 1.0F}), Error);
  EXPECT_THROW(optim::Rmsprop(p, {.eps = 0}), Error);
  EXPECT_THROW(optim::Rmsprop(p, {.nesterov = true}), Error);  // needs momentum
  optim::Adam adam(p, {});
  EXPECT_THROW(adam.set_lr(-0.1F), Error);
  EXPECT_THROW(adam.set_group(3, {}), Error);  // no such group
  EXPECT_THROW(Arena empty; optim::Sgd(empty, {}), Error);
}

TEST(Optimizer, RejectsMismatchedArenas) {
  Arena p = golden_arena();
  optim::Adam adam(p, {});
  Arena other = golden_arena(Device::cpu(), /*groups=*/true);  // same tensors, other layout
  Arena g = p.like();
  EXPECT_NE(testing::error_of([&] { adam.step(other, g); }).find("another layout"),
            std::string::npos);
  Arena g_other = other.like();
  const std::string e = testing::error_of([&] { adam.step(p, g_other); });
  EXPECT_NE(e.find("different layouts"), std::string::npos) << e;
  // It names the first tensor that differs, not only counts that may well be equal.
  EXPECT_NE(e.find("tensor 1 is 'b' [70] group 0 vs 'b' [70] group 1"), std::string::npos) << e;
  EXPECT_THROW(adam.step(p, p), Error);
  EXPECT_EQ(adam.issued_steps(), 0);  // nothing ran
}

// Stepping, saving every state arena and the step counts, restoring them into a fresh optimizer
// and stepping on must give exactly what an uninterrupted run gives.
void check_save_restore(const nlohmann::json& c, Device device) {
  Arena p_ref = golden_arena(device, c.value("groups", false));
  Arena g = p_ref.like();
  auto ref = testing::make_optimizer(c, p_ref);
  for (int t = 1; t <= 20; ++t) {
    set_golden_grads(g, t);
    ref->step(p_ref, g);
  }

  Arena p = golden_arena(device, c.value("groups", false));
  auto first = testing::make_optimizer(c, p);
  for (int t = 1; t <= 7; ++t) {
    set_golden_grads(g, t);
    first->step(p, g);
  }
  std::vector<std::pair<std::string, std::vector<float>>> saved;
  for (const auto& s : first->state()) saved.emplace_back(s.name, s.arena->to_host());
  const std::int64_t applied = first->applied_steps();
  first.reset();

  auto second = testing::make_optimizer(c, p);
  auto states = second->state();
  ASSERT_EQ(states.size(), saved.size());
  for (std::size_t k = 0; k < states.size(); ++k) {
    ASSERT_EQ(states[k].name, saved[k].first);
    states[k].arena->from_host(saved[k].second);
  }
  second->set_step_counts(applied, 0);
  for (int t = 8; t <= 20; ++t) {
    set_golden_grads(g, t);
    second->step(p, g);
  }
  EXPECT_EQ(p.to_host(), p_ref.to_host()) << c.at("name");
  EXPECT_EQ(second->applied_steps(), 20);
  EXPECT_EQ(second->issued_steps(), 20);  // continued from the counts, as the first one's
}

const nlohmann::json& all_cases() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/cases.json");
    return nlohmann::json::parse(in);
  }();
  return j.at("cases");
}

TEST(Optimizer, SaveAndRestoreStateIsExact) {
  for (const auto& c : all_cases()) check_save_restore(c, Device::cpu());
}

// A grad scale s gives exactly the update of gradients pre-multiplied by s (PyTorch's
// clip_grad_norm_ multiplies the gradients in place, then steps).
void check_grad_scale(Device device) {
  Arena p1 = golden_arena(device);
  Arena p2 = golden_arena(device);
  Arena g = p1.like();
  optim::Adam a1(p1, {.lr = 0.01F});
  optim::Adam a2(p2, {.lr = 0.01F});
  const float scale = 0.37F;
  Buffer scale_buf(sizeof(float), device);
  copy_bytes(scale_buf.data(), device, &scale, Device::cpu(), sizeof(float));
  for (int t = 1; t <= 5; ++t) {
    set_golden_grads(g, t);
    a1.step(p1, g, {.grad_scale = scale_buf.as<float>()});
    std::vector<float> scaled = g.to_host();
    for (float& x : scaled) x *= scale;
    Arena gs = g.like();
    gs.from_host(scaled);
    a2.step(p2, gs);
  }
  EXPECT_EQ(p1.to_host(), p2.to_host());
}

// With the skip flag set nothing changes, the skip counter counts, and the next real step is
// the one an uninterrupted run would take (t did not advance).
void check_skip(Device device) {
  Arena p = golden_arena(device);
  Arena p_ref = golden_arena(device);
  Arena g = p.like();
  optim::Adam opt(p, {.lr = 0.01F, .amsgrad = true});
  optim::Adam ref(p_ref, {.lr = 0.01F, .amsgrad = true});
  Buffer flag(sizeof(std::int32_t), device);
  auto set_flag = [&](std::int32_t v) {
    copy_bytes(flag.data(), device, &v, Device::cpu(), sizeof(v));
  };
  const optim::StepGuard guard{.skip = flag.as<std::int32_t>()};
  set_golden_grads(g, 1);
  set_flag(0);
  opt.step(p, g, guard);
  ref.step(p_ref, g);
  const auto params_before = p.to_host();
  std::vector<std::vector<float>> states_before;
  for (const auto& s : opt.state()) states_before.push_back(s.arena->to_host());

  set_flag(1);
  for (int i = 0; i < 3; ++i) {
    set_golden_grads(g, 99 + i);
    opt.step(p, g, guard);
  }
  EXPECT_EQ(p.to_host(), params_before);
  for (std::size_t k = 0; k < states_before.size(); ++k)
    EXPECT_EQ(opt.state()[k].arena->to_host(), states_before[k]) << opt.state()[k].name;
  EXPECT_EQ(opt.applied_steps(), 1);
  EXPECT_EQ(opt.skipped_steps(), 3);
  EXPECT_EQ(opt.issued_steps(), 4);

  set_flag(0);
  for (int t = 2; t <= 4; ++t) {
    set_golden_grads(g, t);
    opt.step(p, g, guard);
    ref.step(p_ref, g);
  }
  EXPECT_EQ(p.to_host(), p_ref.to_host());
  EXPECT_EQ(opt.applied_steps(), 4);
  EXPECT_EQ(opt.skipped_steps(), 3);
}

// Note [learning rate in device memory]: every step reads the group's lr x lr_scale committed
// before it - changed between steps, scaled per group, and kept across set_step_counts (which
// rewrites the counts beside it). Plain SGD with powers of two is exact: p = 1 - 0.5 sum lr_k s.
void check_lr_per_step(Device device) {
  ArenaLayout::Builder b;
  b.add("w", {8}, 0);
  b.add("b", {4}, 1);
  Arena p(b.build(), device);
  p.from_host(std::vector<float>(p.total(), 1.0F));
  Arena g = p.like();
  g.from_host(std::vector<float>(g.total(), 0.5F));
  optim::Sgd opt(p, {.lr = 0.25F});
  opt.set_group(1, {.lr_scale = 2.0F});
  const float lrs[] = {0.25F, 0.125F, 0.125F, 0.5F, 0.0625F};
  float sum = 0.0F;
  for (int k = 0; k < 5; ++k) {
    opt.set_lr(lrs[k]);
    if (k == 2) opt.set_step_counts(opt.applied_steps(), 0);  // as a resume does; lr unchanged
    opt.step(p, g);
    sum += lrs[k];
  }
  const std::vector<float> got = p.to_host();
  const ArenaLayout& layout = p.layout();
  for (const auto& t : layout.tensors())
    for (std::size_t i = 0; i < t.numel; ++i)
      EXPECT_EQ(got[t.offset + i], 1.0F - 0.5F * sum * (t.group == 1 ? 2.0F : 1.0F)) << t.name;
  EXPECT_EQ(opt.applied_steps(), 5);
}

TEST(Optimizer, EachStepUsesTheLearningRateSetBeforeIt) {
  check_lr_per_step(Device::cpu());
}

TEST(Optimizer, GradScaleEqualsPrescaledGradients) {
  check_grad_scale(Device::cpu());
}
TEST(Optimizer, SkipFlagLeavesEverythingUntouched) {
  check_skip(Device::cpu());
}

// RMSProp with Nesterov momentum against Algorithm 8.6 of the Deep Learning book, run in double
// in the book's own form (gradient at the interim point theta + alpha v) on the quadratic
// f(theta) = sum a_i theta_i^2 / 2. cutrain stores phi = theta + alpha v and is given the
// gradient at phi, so phi must track theta + alpha v.
TEST(Optimizer, RmspropNesterovFollowsAlgorithm86) {
  const float lr = 0.01F, rho = 0.9F, alpha = 0.8F, eps = 1e-8F;
  Arena phi = golden_arena();
  Arena g = phi.like();
  optim::Rmsprop opt(phi,
                     {.lr = lr, .alpha = rho, .eps = eps, .momentum = alpha, .nesterov = true});
  const std::vector<float> init = testing::get_flat(phi);
  const std::size_t n = init.size();
  std::vector<double> theta(init.begin(), init.end()), v(n, 0.0), r(n, 0.0), a(n);
  for (std::size_t i = 0; i < n; ++i) a[i] = 0.5 + static_cast<double>(i % 7);
  for (int step = 0; step < 60; ++step) {
    std::vector<float> phi_now = testing::get_flat(phi);
    std::vector<float> grad(n);
    for (std::size_t i = 0; i < n; ++i) grad[i] = static_cast<float>(a[i]) * phi_now[i];
    testing::set_flat(g, grad);
    opt.step(phi, g);
    for (std::size_t i = 0; i < n; ++i) {  // the book, literally
      const double interim = theta[i] + alpha * v[i];
      const double gi = a[i] * interim;
      r[i] = rho * r[i] + (1 - rho) * gi * gi;
      v[i] = alpha * v[i] - lr * gi / (std::sqrt(r[i]) + eps);
      theta[i] += v[i];
    }
  }
  const std::vector<float> got = testing::get_flat(phi);
  for (std::size_t i = 0; i < n; ++i) {
    const double want = theta[i] + alpha * v[i];
    ASSERT_NEAR(got[i], want, 2e-5 * std::max(1.0, std::fabs(want))) << "element " << i;
  }
}

TEST(OptimizerGpu, SaveAndRestoreStateIsExact) {
  CUTRAIN_REQUIRE_GPU();
  for (const auto& c : all_cases()) check_save_restore(c, Device::cuda(0));
}
TEST(OptimizerGpu, EachStepUsesTheLearningRateSetBeforeIt) {
  CUTRAIN_REQUIRE_GPU();
  check_lr_per_step(Device::cuda(0));
}
TEST(OptimizerGpu, GradScaleEqualsPrescaledGradients) {
  CUTRAIN_REQUIRE_GPU();
  check_grad_scale(Device::cuda(0));
}
TEST(OptimizerGpu, SkipFlagLeavesEverythingUntouched) {
  CUTRAIN_REQUIRE_GPU();
  check_skip(Device::cuda(0));
}

// A large arena on a stream: many Vec4s per thread, several groups, a non-default stream.
TEST(OptimizerGpu, LargeArenaOnStreamMatchesCpu) {
  CUTRAIN_REQUIRE_GPU();
  ArenaLayout::Builder b;
  b.add("big", {1 << 22});
  b.add("odd", {12345}, 1);
  b.add("tail", {7}, 2);
  Arena pc(b.build(), Device::cpu());
  std::vector<float> v(pc.total());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = testing::unit(5, i);
  pc.from_host(v);
  Arena gc = pc.like();
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = testing::unit(6, i);
  gc.from_host(v);
  Arena pg = pc.copy_to(Device::cuda(0));
  Arena gg = gc.copy_to(Device::cuda(0));
  optim::AdamW oc(pc, {.lr = 0.01F, .weight_decay = 0.1F});
  optim::AdamW og(pg, {.lr = 0.01F, .weight_decay = 0.1F});
  oc.set_group(1, {0.5F, 0.0F});
  og.set_group(1, {0.5F, 0.0F});
  Stream s(Device::cuda(0));
  for (int t = 0; t < 3; ++t) {
    oc.step(pc, gc);
    og.step(pg, gg, {}, s.native());
  }
  s.synchronize();
  EXPECT_EQ(pg.to_host(), pc.to_host());
}

}  // namespace
}  // namespace cutrain
