// Residual: x + body(x) against the same body run as plain layers of a Sequential (the same
// weights: the values must be the sum, bit for bit), finite differences, 16-bit rounding, shapes,
// names and the dropout stream.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "kernels/common/half.cuh"
#include "nn/nn_fixture.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::error_of;
using testing::normal;
using testing::to_host;

const Shape kImage{3, 5, 4};

// conv, BN, ReLU, conv: 3 -> 3 channels, padding 1 keeps 5 x 4.
template <class M>
void add_body(M& m) {
  m.template emplace<Conv2d>(3, 3, 3, 1, 1);
  m.template emplace<BatchNorm2d>(3);
  m.template emplace<Activation>(Activation::Kind::kRelu);
  m.template emplace<Conv2d>(3, 3, 3, 1, 1);
}

Sequential residual_model(Device device) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  auto block = std::make_unique<Residual>();
  add_body(*block);
  m.add(std::move(block));
  m.build(device, 3);
  return m;
}

// The body's layers directly in a Sequential, with the residual model's tensors:
// "layers.1.body.{j}.X" is "layers.{1 + j}.X" here.
std::string plain_name(const std::string& residual_name) {
  const std::string prefix = "layers.1.body.";
  EXPECT_EQ(residual_name.rfind(prefix, 0), 0U) << residual_name;
  const std::size_t dot = residual_name.find('.', prefix.size());
  const int j = std::stoi(residual_name.substr(prefix.size(), dot - prefix.size()));
  return "layers." + std::to_string(1 + j) + residual_name.substr(dot);
}

Sequential plain_model(Sequential& residual) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  add_body(m);
  m.build(residual.device(), 99);  // another seed: every value below is copied
  for (Arena* a : {&residual.parameters(), &residual.buffers()}) {
    Arena& b = a == &residual.parameters() ? m.parameters() : m.buffers();
    for (const TensorSpec& t : a->layout().tensors())
      b.tensor_from_host(plain_name(t.name), a->tensor_to_host(t.name));
  }
  return m;
}

TEST(Residual, IsTheInputPlusItsBodyForwardAndBackward) {
  Sequential r = residual_model(Device::cpu());
  Sequential p = plain_model(r);
  const std::int64_t batch = 6, f = numel(kImage);
  const std::vector<float> xs = normal(static_cast<std::size_t>(batch * f), 1);
  const std::vector<float> dys = normal(xs.size(), 2);
  DeviceMatrix x(xs, batch, f, Device::cpu()), dy(dys, batch, f, Device::cpu());
  DeviceMatrix dx_r(batch, f, Device::cpu()), dx_p(batch, f, Device::cpu());
  const std::vector<float> yr = to_host(r.forward(x.m)), yp = to_host(p.forward(x.m));
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(yr[i], xs[i] + yp[i]) << i;
  r.backward(dy.m, nullptr, &dx_r.m);
  p.backward(dy.m, nullptr, &dx_p.m);
  const std::vector<float> gr = to_host(dx_r.m), gp = to_host(dx_p.m);
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(gr[i], gp[i] + dys[i]) << i;
  // The body's parameter gradients and running statistics are the plain layers'.
  for (const TensorSpec& t : r.gradients().layout().tensors())
    EXPECT_EQ(r.gradients().tensor_to_host(t.name),
              p.gradients().tensor_to_host(plain_name(t.name)))
        << t.name;
  for (const TensorSpec& t : r.buffers().layout().tensors())
    EXPECT_EQ(r.buffers().tensor_to_host(t.name), p.buffers().tensor_to_host(plain_name(t.name)))
        << t.name;
  // Evaluation (BatchNorm from the running statistics) too.
  r.eval();
  p.eval();
  const std::vector<float> er = to_host(r.forward(x.m)), ep = to_host(p.forward(x.m));
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(er[i], xs[i] + ep[i]) << i;
}

// Note [16-bit values in fp32 storage]: the body's layers round as a Sequential's do, and the
// sum is rounded once more: y = round(round(x) + body(round(x))).
TEST(Residual, InBf16TheSumOfTheRoundedValuesIsRounded) {
  Sequential r = residual_model(Device::cpu());
  Sequential p = plain_model(r);
  r.set_precision(Precision::kBf16);
  p.set_precision(Precision::kBf16);
  const std::int64_t batch = 4, f = numel(kImage);
  const std::vector<float> xs = normal(static_cast<std::size_t>(batch * f), 5);
  DeviceMatrix x(xs, batch, f, Device::cpu());
  const std::vector<float> yr = to_host(r.forward(x.m)), yp = to_host(p.forward(x.m));
  std::size_t changed = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const float x16 = rules::round_half(rules::Half::kBf16, xs[i]);
    const float want = rules::round_half(rules::Half::kBf16, x16 + yp[i]);
    ASSERT_EQ(yr[i], want) << i;
    changed += want != x16 + yp[i] ? 1 : 0;
  }
  EXPECT_GT(changed, xs.size() / 4);  // the last rounding is not a no-op
}

TEST(ResidualFiniteDifferences, SmoothBodiesAndANestedOne) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  auto inner = std::make_unique<Residual>();
  inner->emplace<Conv2d>(3, 3, 1).emplace<Activation>(Activation::Kind::kSigmoid);
  auto outer = std::make_unique<Residual>();
  outer->emplace<Conv2d>(3, 3, 3, 1, 1).emplace<BatchNorm2d>(3);
  outer->emplace<Activation>(Activation::Kind::kTanh).add(std::move(inner));
  m.add(std::move(outer));
  m.emplace<Conv2d>(3, 2, 3).emplace<Flatten>().emplace<Linear>(2 * 3 * 2, 3);
  m.build(Device::cpu(), 8);
  const GradCheckResult r = check_gradients(m, {.batch = 3, .seed = 4, .per_tensor = 0});
  EXPECT_TRUE(r.passed) << r.worst << "; " << r.kinks << " kinks of " << r.kinks + r.checked;
  EXPECT_GT(r.checked, 200U);
}

TEST(Residual, RefusesABodyThatChangesTheShapeNamingTheLayers) {
  auto build = [](auto fill) {
    Sequential m(numel(kImage));
    m.emplace<Unflatten>(1, kImage);
    auto block = std::make_unique<Residual>();
    fill(*block);
    m.add(std::move(block));
    m.build(Device::cpu(), 1);
  };
  const std::string widen =
      error_of([&] { build([](Residual& b) { b.emplace<Conv2d>(3, 6, 3, 1, 1); }); });
  EXPECT_NE(widen.find("layer 1 (Residual)"), std::string::npos) << widen;
  EXPECT_NE(widen.find("the body maps [3, 5, 4] to [6, 5, 4]"), std::string::npos) << widen;
  const std::string flat = error_of([&] {
    build([](Residual& b) { b.emplace<Conv2d>(3, 3, 3, 1, 1).emplace<Linear>(60, 60); });
  });
  EXPECT_NE(flat.find("body layer 1 (Linear) cannot take input of shape [3, 5, 4]"),
            std::string::npos)
      << flat;
  EXPECT_NE(error_of([&] { build([](Residual&) {}); }).find("the body has no layers"),
            std::string::npos);
  Residual built;
  EXPECT_NE(error_of([&] { built.add(nullptr); }).find("null layer"), std::string::npos);
}

TEST(Residual, NamesItsTensorsAsTorchAndDescribesItsBody) {
  Sequential m = residual_model(Device::cpu());
  std::vector<std::string> names;
  for (const TensorSpec& t : m.parameters().layout().tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"layers.1.body.0.weight", "layers.1.body.0.bias",
                                             "layers.1.body.1.weight", "layers.1.body.1.bias",
                                             "layers.1.body.3.weight", "layers.1.body.3.bias"}));
  EXPECT_TRUE(m.buffers().layout().find("layers.1.body.1.running_var").has_value());
  const nlohmann::json modules = nlohmann::json::parse(m.torch_modules());
  ASSERT_EQ(modules.size(), 2U);
  EXPECT_EQ(modules[1]["type"], "Residual");
  const nlohmann::json& body = modules[1]["args"]["body"];
  ASSERT_EQ(body.size(), 4U);
  EXPECT_EQ(body[0]["type"], "Conv2d");
  EXPECT_EQ(body[0]["args"]["padding"], nlohmann::json::array({1, 1}));
  EXPECT_EQ(body[2]["type"], "ReLU");
  const std::string summary = m.summary();
  EXPECT_NE(summary.find("(1) Residual  [3, 5, 4] -> [3, 5, 4]  params 174"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("    (1.3) Conv2d  [3, 5, 4] -> [3, 5, 4]  params 84"), std::string::npos)
      << summary;
  // Default initialization inside the body: He before the ReLU, Xavier for the last conv.
  auto& block = static_cast<Residual&>(m.layer(1));
  EXPECT_EQ(static_cast<Conv2d&>(block.layer(0)).init_scheme()->kind,
            init::Scheme::Kind::kKaimingUniform);
  EXPECT_EQ(static_cast<Conv2d&>(block.layer(3)).init_scheme()->kind,
            init::Scheme::Kind::kXavierUniform);
}

// Note [dropout stream]: a Dropout inside a body has a stream of its own (not layer 0's), the
// same on every run of the same seed.
TEST(Residual, DropoutInsideDrawsItsOwnReproducibleStream) {
  const std::int64_t batch = 8, f = 64;
  auto output = [&](bool nested) {
    Sequential m(f);
    if (nested) {
      auto block = std::make_unique<Residual>();
      block->emplace<Dropout>(0.5F);
      m.add(std::move(block));
    } else {
      m.emplace<Dropout>(0.5F);
    }
    m.build(Device::cpu(), 21);
    DeviceMatrix x(std::vector<float>(static_cast<std::size_t>(batch * f), 1.0F), batch, f,
                   Device::cpu());
    std::vector<float> y = to_host(m.forward(x.m));
    if (nested)
      for (float& v : y) v -= 1.0F;  // the shortcut
    return y;
  };
  const std::vector<float> a = output(true), b = output(true), top = output(false);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, top);
  std::size_t kept = 0;
  for (const float v : a) {
    ASSERT_TRUE(v == 0.0F || v == 2.0F) << v;
    kept += v == 2.0F ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(kept) / static_cast<double>(a.size()), 0.5, 0.1);
}

TEST(ResidualGpu, FollowsTheCpu) {
  CUTRAIN_REQUIRE_GPU();
  Sequential cpu = residual_model(Device::cpu());
  Sequential gpu = residual_model(Device::cuda(0));
  gpu.parameters().from_host(cpu.parameters().to_host());
  const std::int64_t batch = 6, f = numel(kImage);
  const std::vector<float> xs = normal(static_cast<std::size_t>(batch * f), 1);
  const std::vector<float> dys = normal(xs.size(), 2);
  DeviceMatrix xc(xs, batch, f, Device::cpu()), dyc(dys, batch, f, Device::cpu());
  DeviceMatrix xg(xs, batch, f, Device::cuda(0)), dyg(dys, batch, f, Device::cuda(0));
  DeviceMatrix dxc(batch, f, Device::cpu()), dxg(batch, f, Device::cuda(0));
  const std::vector<float> yc = to_host(cpu.forward(xc.m)), yg = to_host(gpu.forward(xg.m));
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(yg[i], yc[i], 1e-4) << i;
  cpu.backward(dyc.m, nullptr, &dxc.m);
  gpu.backward(dyg.m, nullptr, &dxg.m);
  const std::vector<float> gc = to_host(dxc.m), gg = to_host(dxg.m);
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(gg[i], gc[i], 1e-3) << i;
  const std::vector<float> wc = cpu.gradients().to_host(), wg = gpu.gradients().to_host();
  for (std::size_t i = 0; i < wc.size(); ++i) EXPECT_NEAR(wg[i], wc[i], 1e-3) << i;
}

}  // namespace
}  // namespace cutrain::nn
