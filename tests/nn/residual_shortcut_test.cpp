// Residual with a projection shortcut (torchvision's BasicBlock with its downsample):
// shortcut(x) + body(x) against the two branches run as plain Sequentials with the same weights
// (bit for bit, forward and backward), finite differences, shapes, names and the summary.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "nn/nn_fixture.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::error_of;
using testing::normal;
using testing::to_host;

const Shape kImage{3, 6, 5};  // -> [4, 3, 3] at stride 2

// BasicBlock's body at stride 2: conv 3x3 s2, BN, ReLU, conv 3x3.
template <class M>
void add_body(M& m) {
  m.template emplace<Conv2d>(3, 4, 3, 2, 1);
  m.template emplace<BatchNorm2d>(4);
  m.template emplace<Activation>(Activation::Kind::kRelu);
  m.template emplace<Conv2d>(4, 4, 3, 1, 1);
}
// Its downsample: conv 1x1 s2 without a bias, BN.
void add_shortcut(Residual& r) {
  r.emplace_shortcut<Conv2d>(3, 4, 1, 2, 0, 1, false).emplace_shortcut<BatchNorm2d>(4);
}

Sequential block_model(Device device) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  auto block = std::make_unique<Residual>();
  add_body(*block);
  add_shortcut(*block);
  m.add(std::move(block));
  m.build(device, 3);
  return m;
}

// One branch as a plain Sequential holding the block's tensors of that branch:
// "layers.1.{scope}.{j}.X" is "layers.{1 + j}.X" there.
Sequential branch_model(Sequential& block, const std::string& scope) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  if (scope == "body") {
    add_body(m);
  } else {
    m.emplace<Conv2d>(3, 4, 1, 2, 0, 1, false).emplace<BatchNorm2d>(4);
  }
  m.build(block.device(), 99);  // another seed: every value below is copied
  const std::string prefix = "layers.1." + scope + ".";
  for (Arena* a : {&block.parameters(), &block.buffers()}) {
    Arena& b = a == &block.parameters() ? m.parameters() : m.buffers();
    for (const TensorSpec& t : a->layout().tensors()) {
      if (t.name.rfind(prefix, 0) != 0) continue;
      const std::size_t dot = t.name.find('.', prefix.size());
      const int j = std::stoi(t.name.substr(prefix.size(), dot - prefix.size()));
      b.tensor_from_host("layers." + std::to_string(1 + j) + t.name.substr(dot),
                         a->tensor_to_host(t.name));
    }
  }
  return m;
}

TEST(ResidualShortcut, IsTheShortcutPlusTheBodyForwardAndBackward) {
  Sequential r = block_model(Device::cpu());
  Sequential body = branch_model(r, "body");
  Sequential shortcut = branch_model(r, "shortcut");
  const std::int64_t batch = 5, f = numel(kImage), g = 4 * 3 * 3;
  ASSERT_EQ(r.output_features(), g);
  const std::vector<float> xs = normal(static_cast<std::size_t>(batch * f), 1);
  const std::vector<float> dys = normal(static_cast<std::size_t>(batch * g), 2);
  DeviceMatrix x(xs, batch, f, Device::cpu()), dy(dys, batch, g, Device::cpu());
  DeviceMatrix dx_r(batch, f, Device::cpu()), dx_b(batch, f, Device::cpu()),
      dx_s(batch, f, Device::cpu());
  const std::vector<float> yr = to_host(r.forward(x.m)), yb = to_host(body.forward(x.m)),
                           ys = to_host(shortcut.forward(x.m));
  for (std::size_t i = 0; i < yr.size(); ++i) ASSERT_EQ(yr[i], ys[i] + yb[i]) << i;
  r.backward(dy.m, nullptr, &dx_r.m);
  body.backward(dy.m, nullptr, &dx_b.m);
  shortcut.backward(dy.m, nullptr, &dx_s.m);
  const std::vector<float> gr = to_host(dx_r.m), gb = to_host(dx_b.m), gs = to_host(dx_s.m);
  for (std::size_t i = 0; i < gr.size(); ++i) ASSERT_EQ(gr[i], gb[i] + gs[i]) << i;
  // Each branch's parameter gradients and running statistics are its plain layers'.
  for (const auto& [scope, plain] : {std::pair{"body", &body}, std::pair{"shortcut", &shortcut}}) {
    const std::string prefix = std::string("layers.1.") + scope + ".";
    for (Arena* a : {&r.gradients(), &r.buffers()})
      for (const TensorSpec& t : a->layout().tensors()) {
        if (t.name.rfind(prefix, 0) != 0) continue;
        const std::size_t dot = t.name.find('.', prefix.size());
        const std::string plain_name = "layers." +
                                       std::to_string(1 + std::stoi(t.name.substr(prefix.size()))) +
                                       t.name.substr(dot);
        Arena& p = a == &r.gradients() ? plain->gradients() : plain->buffers();
        EXPECT_EQ(a->tensor_to_host(t.name), p.tensor_to_host(plain_name)) << t.name;
      }
  }
  // Evaluation (BatchNorm from the running statistics) too.
  r.eval();
  body.eval();
  shortcut.eval();
  const std::vector<float> er = to_host(r.forward(x.m)), eb = to_host(body.forward(x.m)),
                           es = to_host(shortcut.forward(x.m));
  for (std::size_t i = 0; i < er.size(); ++i) ASSERT_EQ(er[i], es[i] + eb[i]) << i;
}

TEST(ResidualShortcut, FiniteDifferences) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  auto block = std::make_unique<Residual>();
  block->emplace<Conv2d>(3, 4, 3, 2, 1).emplace<BatchNorm2d>(4);
  block->emplace<Activation>(Activation::Kind::kTanh).emplace<Conv2d>(4, 4, 3, 1, 1);
  block->emplace_shortcut<Conv2d>(3, 4, 1, 2).emplace_shortcut<BatchNorm2d>(4);
  m.add(std::move(block));
  m.emplace<Flatten>().emplace<Linear>(4 * 3 * 3, 3);
  m.build(Device::cpu(), 8);
  const GradCheckResult r = check_gradients(m, {.batch = 3, .seed = 4, .per_tensor = 0});
  EXPECT_TRUE(r.passed) << r.worst << "; " << r.kinks << " kinks of " << r.kinks + r.checked;
  EXPECT_GT(r.checked, 300U);
}

TEST(ResidualShortcut, BranchesOfOtherShapesAreRefusedNamingBoth) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  auto block = std::make_unique<Residual>();
  block->emplace<Conv2d>(3, 4, 3, 2, 1);
  block->emplace_shortcut<Conv2d>(3, 4, 1);  // stride 1: [4, 6, 5]
  m.add(std::move(block));
  const std::string e = error_of([&] { m.build(Device::cpu(), 1); });
  EXPECT_NE(e.find("the body maps [3, 6, 5] to [4, 3, 3] but the shortcut to [4, 6, 5]"),
            std::string::npos)
      << e;
  Sequential bad(numel(kImage));
  bad.emplace<Unflatten>(1, kImage);
  auto b2 = std::make_unique<Residual>();
  b2->emplace<Conv2d>(3, 4, 3, 2, 1);
  b2->emplace_shortcut<Conv2d>(4, 4, 1);  // expects 4 channels
  bad.add(std::move(b2));
  const std::string e2 = error_of([&] { bad.build(Device::cpu(), 1); });
  EXPECT_NE(e2.find("shortcut layer 0 (Conv2d) cannot take input of shape [3, 6, 5]"),
            std::string::npos)
      << e2;
  // Without a shortcut the message says how to change the shape.
  Sequential identity(numel(kImage));
  identity.emplace<Unflatten>(1, kImage);
  auto b3 = std::make_unique<Residual>();
  b3->emplace<Conv2d>(3, 4, 3, 2, 1);
  identity.add(std::move(b3));
  EXPECT_NE(error_of([&] { identity.build(Device::cpu(), 1); }).find("add_shortcut"),
            std::string::npos);
  Residual r;
  EXPECT_NE(error_of([&] { r.add_shortcut(nullptr); }).find("null layer"), std::string::npos);
}

TEST(ResidualShortcut, NamesItsTensorsAsTorchAndDescribesBothBranches) {
  Sequential m = block_model(Device::cpu());
  EXPECT_TRUE(m.parameters().layout().find("layers.1.shortcut.0.weight").has_value());
  EXPECT_FALSE(m.parameters().layout().find("layers.1.shortcut.0.bias").has_value());
  EXPECT_TRUE(m.buffers().layout().find("layers.1.shortcut.1.running_var").has_value());
  const nlohmann::json modules = nlohmann::json::parse(m.torch_modules());
  const nlohmann::json& shortcut = modules[1]["args"]["shortcut"];
  ASSERT_EQ(shortcut.size(), 2U);
  EXPECT_EQ(shortcut[0]["type"], "Conv2d");
  EXPECT_EQ(shortcut[0]["args"]["stride"], nlohmann::json::array({2, 2}));
  EXPECT_EQ(shortcut[1]["type"], "BatchNorm2d");
  const std::string summary = m.summary();
  EXPECT_NE(summary.find("(1) Residual  [3, 6, 5] -> [4, 3, 3]"), std::string::npos) << summary;
  EXPECT_NE(summary.find("    (1.shortcut.0) Conv2d  [3, 6, 5] -> [4, 3, 3]  params 12"),
            std::string::npos)
      << summary;
  // An identity block's modules have no "shortcut" (exports as before).
  Sequential plain(4);
  auto block = std::make_unique<Residual>();
  block->emplace<Linear>(4, 4);
  plain.add(std::move(block));
  plain.build(Device::cpu(), 1);
  EXPECT_FALSE(nlohmann::json::parse(plain.torch_modules())[0]["args"].contains("shortcut"));
}

// Note [dropout stream]: a Dropout in the shortcut draws a stream of its own, not the one of the
// body's Dropout at the same position - shortcut(x) + body(x) of ones is 0, 2 or 4, and 2 (one
// kept, one dropped) needs masks that differ.
TEST(ResidualShortcut, DropoutInEachBranchDrawsItsOwnStream) {
  const std::int64_t batch = 8, f = 64;
  Sequential m(f);
  auto block = std::make_unique<Residual>();
  block->emplace<Dropout>(0.5F);
  block->emplace_shortcut<Dropout>(0.5F);
  m.add(std::move(block));
  m.build(Device::cpu(), 21);
  DeviceMatrix x(std::vector<float>(static_cast<std::size_t>(batch * f), 1.0F), batch, f,
                 Device::cpu());
  const std::vector<float> y = to_host(m.forward(x.m));
  std::size_t one_kept = 0;
  for (const float v : y) {
    ASSERT_TRUE(v == 0.0F || v == 2.0F || v == 4.0F) << v;
    one_kept += v == 2.0F ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(one_kept) / static_cast<double>(y.size()), 0.5, 0.1);
}

TEST(ResidualShortcutGpu, FollowsTheCpu) {
  CUTRAIN_REQUIRE_GPU();
  Sequential cpu = block_model(Device::cpu());
  Sequential gpu = block_model(Device::cuda(0));
  gpu.parameters().from_host(cpu.parameters().to_host());
  const std::int64_t batch = 5, f = numel(kImage), g = 4 * 3 * 3;
  const std::vector<float> xs = normal(static_cast<std::size_t>(batch * f), 1);
  const std::vector<float> dys = normal(static_cast<std::size_t>(batch * g), 2);
  DeviceMatrix xc(xs, batch, f, Device::cpu()), dyc(dys, batch, g, Device::cpu());
  DeviceMatrix xg(xs, batch, f, Device::cuda(0)), dyg(dys, batch, g, Device::cuda(0));
  DeviceMatrix dxc(batch, f, Device::cpu()), dxg(batch, f, Device::cuda(0));
  const std::vector<float> yc = to_host(cpu.forward(xc.m)), yg = to_host(gpu.forward(xg.m));
  for (std::size_t i = 0; i < yc.size(); ++i) EXPECT_NEAR(yg[i], yc[i], 1e-4) << i;
  cpu.backward(dyc.m, nullptr, &dxc.m);
  gpu.backward(dyg.m, nullptr, &dxg.m);
  const std::vector<float> gc = to_host(dxc.m), gg = to_host(dxg.m);
  for (std::size_t i = 0; i < gc.size(); ++i) EXPECT_NEAR(gg[i], gc[i], 1e-3) << i;
  const std::vector<float> wc = cpu.gradients().to_host(), wg = gpu.gradients().to_host();
  for (std::size_t i = 0; i < wc.size(); ++i) EXPECT_NEAR(wg[i], wc[i], 1e-3) << i;
}

}  // namespace
}  // namespace cutrain::nn
