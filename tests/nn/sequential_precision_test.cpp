// Note [16-bit values in fp32 storage] (cutrain/precision.hpp): in bf16 / fp16 a model computes
// with its parameters, input, activations and activation gradients rounded to the 16-bit format
// - checked exactly on a Linear whose values are chosen to round - while its master weights and
// parameter gradients stay fp32; a trained bf16 / fp16 model learns as the fp32 one does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cutrain/data.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "kernels/common/half.cuh"
#include "nn_fixture.hpp"
#include "support/blobs.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::to_host;

rules::Half kind_of(Precision p) {
  return p == Precision::kFp16 ? rules::Half::kFp16 : rules::Half::kBf16;
}

// y = W x + b for one row and one output, with values chosen so that rounding to either format
// changes them: w0 = 1 + 2^-12 (rounds to 1 in both), x0 = 1 + 3 2^-12 (bf16: 1; fp16: 1 + 2^-10),
// x1 = 0.5 + 2^-9 + 2^-13. Every product and sum below is exact in float and double, so the
// expected values are exact.
void check_linear(Device device, Precision precision) {
  const rules::Half kind = kind_of(precision);
  auto r = [&](double v) {
    return static_cast<double>(rules::round_half(kind, static_cast<float>(v)));
  };
  const std::vector<float> w = {1.0F + std::ldexp(1.0F, -12), 3.0F}, b = {std::ldexp(1.0F, -10)};
  const std::vector<float> x = {1.0F + 3 * std::ldexp(1.0F, -12),
                                0.5F + std::ldexp(1.0F, -9) + std::ldexp(1.0F, -13)};
  Sequential m(2);
  m.emplace<Linear>(2, 1);
  m.build(device, 1);
  m.parameters().tensor_from_host("layers.0.weight", w);
  m.parameters().tensor_from_host("layers.0.bias", b);
  m.set_precision(precision);
  DeviceMatrix in(x, 1, 2, device);
  const float y = to_host(m.forward(in.m))[0];
  const double want = r(r(w[0]) * r(x[0]) + r(w[1]) * r(x[1]) + r(b[0]));
  EXPECT_EQ(y, static_cast<float>(want)) << precision_name(precision);
  EXPECT_NE(y, w[0] * x[0] + w[1] * x[1] + b[0]) << "the values were chosen to round";

  // Backward: dy rounded; dx = W_r^T dy_r rounded; dW = dy_r x_r^T and db = dy_r in fp32.
  const float dy = 1.0F + std::ldexp(1.0F, -12);
  DeviceMatrix g({dy}, 1, 1, device), dx(1, 2, device);
  m.backward(g.m, nullptr, &dx.m);
  const std::vector<float> dxs = to_host(dx.m);
  EXPECT_EQ(dxs[0], static_cast<float>(r(r(w[0]) * r(dy))));
  EXPECT_EQ(dxs[1], static_cast<float>(r(r(w[1]) * r(dy))));
  const std::vector<float> dw = m.gradients().tensor_to_host("layers.0.weight");
  EXPECT_EQ(dw[0], static_cast<float>(r(dy) * r(x[0])));
  EXPECT_EQ(dw[1], static_cast<float>(r(dy) * r(x[1])));
  EXPECT_EQ(m.gradients().tensor_to_host("layers.0.bias")[0], static_cast<float>(r(dy)));
  // The master weights are the optimizer's, untouched by the rounding.
  EXPECT_EQ(m.parameters().to_host()[0], w[0]);
}

TEST(Precision16, ALinearComputesWithRoundedValues) {
  for (const Precision p : {Precision::kBf16, Precision::kFp16}) check_linear(Device::cpu(), p);
}
TEST(Precision16Gpu, ALinearComputesWithRoundedValues) {
  CUTRAIN_REQUIRE_GPU();
  for (const Precision p : {Precision::kBf16, Precision::kFp16}) check_linear(Device::cuda(0), p);
}

bool is_16bit(rules::Half kind, float v) {
  return rules::round_half(kind, v) == v || std::isnan(v);
}

// Every activation of an MLP with BatchNorm and Dropout, and every gradient it hands back, is a
// 16-bit value; back in fp32 the model computes in fp32 again, bit for bit.
void check_mlp(Device device) {
  auto build = [&] {
    Sequential m(12);
    m.emplace<Linear>(12, 16).emplace<BatchNorm1d>(16);
    m.emplace<Activation>(Activation::Kind::kRelu).emplace<Dropout>(0.25F);
    m.emplace<Linear>(16, 4);
    m.build(device, 3);
    return m;
  };
  std::vector<float> xs(8 * 12);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.37F * static_cast<float>(i)) * 3;
  DeviceMatrix x(xs, 8, 12, device), dy(std::vector<float>(8 * 4, 0.3F), 8, 4, device),
      dx(8, 12, device);
  Sequential fp32 = build();
  const std::vector<float> want = to_host(fp32.forward(x.m));
  for (const Precision p : {Precision::kBf16, Precision::kFp16}) {
    Sequential m = build();
    m.set_precision(p);
    const std::vector<float> y = to_host(m.forward(x.m));
    m.backward(dy.m, nullptr, &dx.m);
    for (const float v : y) ASSERT_TRUE(is_16bit(kind_of(p), v)) << v;
    for (const float v : to_host(dx.m)) ASSERT_TRUE(is_16bit(kind_of(p), v)) << v;
    for (std::size_t i = 0; i < y.size(); ++i)  // close to fp32: a few 16-bit roundings apart
      EXPECT_NEAR(y[i], want[i], 0.05 * (1 + std::fabs(want[i]))) << precision_name(p) << i;
    m.set_precision(Precision::kFp32);
    m.set_training_forward_count(0);  // the same dropout masks as the fp32 model's first pass
    EXPECT_EQ(to_host(m.forward(x.m)), want) << precision_name(p);
  }
}

TEST(Precision16, ActivationsAndGradientsAreSixteenBitValues) {
  check_mlp(Device::cpu());
}
TEST(Precision16Gpu, ActivationsAndGradientsAreSixteenBitValues) {
  CUTRAIN_REQUIRE_GPU();
  check_mlp(Device::cuda(0));
}

// Layer::keeps_16bit_values: each layer that says so, run in fp32 on 16-bit inputs and output
// gradients (ties and signed zeros included), writes 16-bit values only - the claim that lets a
// bf16 / fp16 model skip rounding after it. Where a layer says no, its values are not all 16-bit
// ones (an average, a tanh, an overlapping max pooling's summed input gradient).
void check_kept_values(Device device) {
  const Shape image{2, 6, 6};
  struct Case {
    std::string name;
    std::function<void(Sequential&)> add;
    bool forward, backward;
  };
  const std::vector<Case> cases = {
      {"ReLU", [](Sequential& m) { m.emplace<Activation>(Activation::Kind::kRelu); }, true, true},
      {"ReLU6", [](Sequential& m) { m.emplace<Activation>(Activation::Kind::kRelu6); }, true, true},
      {"Hardswish", [](Sequential& m) { m.emplace<Activation>(Activation::Kind::kHardswish); },
       false, false},
      {"MaxPool2d(2)", [](Sequential& m) { m.emplace<MaxPool2d>(2); }, true, true},
      {"MaxPool2d(3, 2, 1)", [](Sequential& m) { m.emplace<MaxPool2d>(3, 2, 1); }, true, false},
      {"Flatten", [](Sequential& m) { m.emplace<Flatten>(); }, true, true},
      {"AvgPool2d(3, 1)", [](Sequential& m) { m.emplace<AvgPool2d>(3, 1); }, false, false},
      {"Tanh", [](Sequential& m) { m.emplace<Activation>(Activation::Kind::kTanh); }, false,
       false}};
  for (const Precision p : {Precision::kBf16, Precision::kFp16}) {
    const rules::Half kind = kind_of(p);
    for (const Case& c : cases) {
      Sequential m(numel(image));
      m.emplace<Unflatten>(1, image);
      c.add(m);
      m.build(device, 1);
      EXPECT_TRUE(m.layer(0).keeps_16bit_values(false) && m.layer(0).keeps_16bit_values(true));
      EXPECT_EQ(m.layer(1).keeps_16bit_values(false), c.forward) << c.name;
      EXPECT_EQ(m.layer(1).keeps_16bit_values(true), c.backward) << c.name;
      const std::int64_t rows = 3, f = numel(image), o = m.output_features();
      // 16-bit values with repeats (ties in the windows) and both zeros.
      std::vector<float> xs(static_cast<std::size_t>(rows * f)),
          dys(static_cast<std::size_t>(rows * o));
      for (std::size_t i = 0; i < xs.size(); ++i)
        xs[i] = rules::round_half(kind, i % 7 == 0 ? (i % 2 ? -0.0F : 0.0F)
                                                   : std::sin(0.7F * static_cast<float>(i % 23)));
      for (std::size_t i = 0; i < dys.size(); ++i)
        dys[i] = rules::round_half(kind, std::sin(1.3F * static_cast<float>(i)) * 3.0F);
      DeviceMatrix x(xs, rows, f, device), dy(dys, rows, o, device), dx(rows, f, device);
      const std::vector<float> y = to_host(m.forward(x.m));
      m.backward(dy.m, nullptr, &dx.m);
      const std::vector<float> g = to_host(dx.m);
      const bool y16 = std::all_of(y.begin(), y.end(), [&](float v) { return is_16bit(kind, v); });
      const bool g16 = std::all_of(g.begin(), g.end(), [&](float v) { return is_16bit(kind, v); });
      EXPECT_EQ(y16, c.forward) << c.name << " " << precision_name(p);
      EXPECT_EQ(g16, c.backward) << c.name << " " << precision_name(p);
    }
  }
}

// Note [16-bit stores] (kernels/common/half.cuh): the layers that round what they store, in a
// bf16 / fp16 model, where the model itself no longer rounds after them - so its output and
// input gradient are the layer's own stores: 16-bit values only, in training and evaluation,
// through each CPU path of the convolution (the implicit GEMM at stride 1, the lowering at
// stride 2) and BatchNorm2d with its ReLU fused. Without the stores' rounding these are fp32
// values (checked: the fp32 model's are not all 16-bit ones).
void check_rounded_stores(Device device) {
  const Shape image{2, 6, 6};
  struct Case {
    std::string name;
    std::function<void(Sequential&)> add;
  };
  const std::vector<Case> cases = {
      {"Conv2d(2, 3, 3, 1, 1)", [](Sequential& m) { m.emplace<Conv2d>(2, 3, 3, 1, 1); }},
      {"Conv2d(2, 3, 3, 2, 1)", [](Sequential& m) { m.emplace<Conv2d>(2, 3, 3, 2, 1); }},
      {"BatchNorm2d(2)", [](Sequential& m) { m.emplace<BatchNorm2d>(2); }},
      {"BatchNorm2d(2) + ReLU",
       [](Sequential& m) {
         m.emplace<BatchNorm2d>(2);
         m.emplace<Activation>(Activation::Kind::kRelu);
       }},
      {"Flatten + BatchNorm1d(72)",
       [](Sequential& m) {
         m.emplace<Flatten>();
         m.emplace<BatchNorm1d>(72);
       }},
      {"Dropout(0.3)", [](Sequential& m) { m.emplace<Dropout>(0.3F); }}};
  for (const Precision p : {Precision::kFp32, Precision::kBf16, Precision::kFp16}) {
    const rules::Half kind = p == Precision::kFp32 ? rules::Half::kBf16 : kind_of(p);
    for (const Case& c : cases) {
      for (const bool training : {true, false}) {
        Sequential m(numel(image));
        m.emplace<Unflatten>(1, image);
        c.add(m);
        m.build(device, 1);
        m.set_precision(p);
        m.train(training);
        for (std::size_t i = 0; i < m.size(); ++i)
          EXPECT_TRUE(m.layer(i).keeps_16bit_values(false) && m.layer(i).keeps_16bit_values(true))
              << c.name << ", layer " << i;
        const std::int64_t rows = 3, f = numel(image), o = m.output_features();
        std::vector<float> xs(static_cast<std::size_t>(rows * f)),
            dys(static_cast<std::size_t>(rows * o));
        for (std::size_t i = 0; i < xs.size(); ++i)
          xs[i] = std::sin(0.7F * static_cast<float>(i)) * 2.0F;
        for (std::size_t i = 0; i < dys.size(); ++i)
          dys[i] = std::cos(1.3F * static_cast<float>(i)) * 3.0F;
        DeviceMatrix x(xs, rows, f, device), dy(dys, rows, o, device), dx(rows, f, device);
        const std::vector<float> y = to_host(m.forward(x.m));
        const bool y16 =
            std::all_of(y.begin(), y.end(), [&](float v) { return is_16bit(kind, v); });
        const std::string what = c.name + " " + precision_name(p) + (training ? " train" : " eval");
        EXPECT_EQ(y16, p != Precision::kFp32) << what;
        if (!training) continue;
        m.backward(dy.m, nullptr, &dx.m);
        const std::vector<float> g = to_host(dx.m);
        const bool g16 =
            std::all_of(g.begin(), g.end(), [&](float v) { return is_16bit(kind, v); });
        EXPECT_EQ(g16, p != Precision::kFp32) << what;
      }
    }
  }
}

TEST(Precision16, LayersThatKeepSixteenBitValuesWriteOnlySixteenBitValues) {
  check_kept_values(Device::cpu());
}
TEST(Precision16Gpu, LayersThatKeepSixteenBitValuesWriteOnlySixteenBitValues) {
  CUTRAIN_REQUIRE_GPU();
  check_kept_values(Device::cuda(0));
}
TEST(Precision16, LayersThatRoundTheirStoresWriteOnlySixteenBitValues) {
  check_rounded_stores(Device::cpu());
}
TEST(Precision16Gpu, LayersThatRoundTheirStoresWriteOnlySixteenBitValues) {
  CUTRAIN_REQUIRE_GPU();
  check_rounded_stores(Device::cuda(0));
}

// Note [16-bit compute copy]: a training forward reads the attached copy, widened exactly - so it
// computes what a model whose master holds the copy's values computes -, an evaluation forward
// rounds the master; the optimizer's nearest copy gives the bits of the model's own rounding. A
// stochastic model trains only from a copy; the copy must fit the parameters.
void check_parameter_copy(Device device, Precision precision) {
  const rules::Half kind = kind_of(precision);
  auto make = [&] {
    Sequential m(4);
    m.emplace<Linear>(4, 3);
    m.emplace<Activation>(Activation::Kind::kRelu);
    m.emplace<Linear>(3, 2);
    m.build(device, 5);
    m.set_precision(precision);
    return m;
  };
  Sequential m = make();
  const std::vector<float> x = {0.1F, -0.7F, 1.3F, 2.9F, -1.1F, 0.35F, 0.6F, -2.2F};
  DeviceMatrix in(x, 2, 4, device);
  const std::vector<float> own = to_host(m.forward(in.m));

  const std::vector<float> master = m.parameters().to_host();
  std::vector<float> other(master.size());
  std::vector<std::uint16_t> bits(master.size());
  for (std::size_t i = 0; i < master.size(); ++i) {
    other[i] = master[i] * 1.5F + 0.01F;
    bits[i] = rules::to_half(kind, other[i]);
  }
  Buffer copy(bits.size() * sizeof(std::uint16_t), device);
  copy_bytes(copy.data(), device, bits.data(), Device::cpu(), copy.bytes());
  m.set_parameter_copy(&copy);
  const std::vector<float> fed = to_host(m.forward(in.m));
  Sequential twin = make();
  twin.parameters().from_host(other);
  EXPECT_EQ(fed, to_host(twin.forward(in.m))) << precision_name(precision);
  EXPECT_NE(fed, own);
  m.eval();
  EXPECT_EQ(to_host(m.forward(in.m)), own);  // the master's own rounding (no dropout here)
  m.train();

  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  opt.enable_compute_copy(m.parameters(), precision);
  m.set_parameter_copy(&opt.compute_copy());
  EXPECT_EQ(to_host(m.forward(in.m)), own);

  m.set_parameter_copy(nullptr);
  m.set_rounding(Rounding::kStochastic);
  EXPECT_NE(testing::error_of([&] { m.forward(in.m); }).find("attach its compute copy"),
            std::string::npos);
  m.eval();
  EXPECT_EQ(to_host(m.forward(in.m)), own);  // evaluation rounds the master to nearest
  m.train();
  const Buffer small(copy.bytes() - 2, device);
  EXPECT_NE(testing::error_of([&] { m.set_parameter_copy(&small); }).find("the copy holds"),
            std::string::npos);
  Sequential fp32(4);
  fp32.emplace<Linear>(4, 2);
  fp32.build(device, 1);
  EXPECT_NE(testing::error_of([&] {
              fp32.set_rounding(Rounding::kStochastic);
            }).find("stochastic rounding is of 16-bit parameters"),
            std::string::npos);
}

TEST(Precision16, TrainingForwardsReadTheAttachedParameterCopy) {
  check_parameter_copy(Device::cpu(), Precision::kBf16);
  check_parameter_copy(Device::cpu(), Precision::kFp16);
}
TEST(Precision16Gpu, TrainingForwardsReadTheAttachedParameterCopy) {
  CUTRAIN_REQUIRE_GPU();
  check_parameter_copy(Device::cuda(0), Precision::kBf16);
  check_parameter_copy(Device::cuda(0), Precision::kFp16);
}

}  // namespace
}  // namespace cutrain::nn
