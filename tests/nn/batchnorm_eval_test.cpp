// BatchNorm's backward after an eval-mode forward (kernels/nn/batchnorm.cuh): the running
// statistics are constants of the pass, as in PyTorch's backward of an eval-mode BatchNorm -
// dx = gamma dy / sqrt(running_var + eps), dgamma = sum dy xhat, dbeta = sum dy, with xhat from
// the running statistics. Checked against that formula (in double) and against finite
// differences of the eval-mode forward, for BatchNorm1d, BatchNorm2d and BatchNorm2d with its
// ReLU fused (Note [BatchNorm2d and ReLU in one pass]).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "cutrain/nn/gradcheck.hpp"
#include "nn_fixture.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::to_host;

struct Case {
  std::string name;
  Shape shape;  // [features] for BatchNorm1d, [C, H, W] for BatchNorm2d
  bool relu;
  bool affine;
};

const Case kCases[] = {{"BatchNorm1d", {6}, false, true},
                       {"BatchNorm1d without affine", {6}, false, false},
                       {"BatchNorm2d", {3, 4, 5}, false, true},
                       {"BatchNorm2d + ReLU", {3, 4, 5}, true, true}};

// The layer alone (between an Unflatten and a Flatten for images), its statistics, weight and
// bias set to values away from their initial ones.
Sequential model(const Case& c, Device device) {
  Sequential m(numel(c.shape));
  const std::int64_t channels = c.shape[0];
  if (c.shape.size() == 3) {
    m.emplace<Unflatten>(1, c.shape).emplace<BatchNorm2d>(channels, 1e-5F, 0.1F, c.affine);
    if (c.relu) m.emplace<Activation>(Activation::Kind::kRelu);
    m.emplace<Flatten>();
  } else {
    m.emplace<BatchNorm1d>(channels, 1e-5F, 0.1F, c.affine);
  }
  m.build(device, 3);
  const std::string bn = c.shape.size() == 3 ? "layers.1." : "layers.0.";
  std::vector<float> mean(static_cast<std::size_t>(channels)), var(mean.size()), w(mean.size()),
      b(mean.size());
  for (std::size_t k = 0; k < mean.size(); ++k) {
    mean[k] = 0.3F * static_cast<float>(k) - 0.4F;
    var[k] = 0.5F + 0.7F * static_cast<float>(k);
    w[k] = 1.5F - 0.4F * static_cast<float>(k);
    b[k] = 0.1F * static_cast<float>(k);
  }
  m.buffers().tensor_from_host(bn + "running_mean", mean);
  m.buffers().tensor_from_host(bn + "running_var", var);
  if (c.affine) {
    m.parameters().tensor_from_host(bn + "weight", w);
    m.parameters().tensor_from_host(bn + "bias", b);
  }
  return m;
}

struct Result {
  std::vector<float> y, dx, dgamma, dbeta;
};

Result eval_backward(const Case& c, Device device, const std::vector<float>& xs,
                     const std::vector<float>& dys, std::int64_t batch) {
  Sequential m = model(c, device);
  m.eval();
  const std::int64_t f = numel(c.shape);
  DeviceMatrix x(xs, batch, f, device), dy(dys, batch, f, device), dx(batch, f, device);
  Result r;
  r.y = to_host(m.forward(x.m));
  m.backward(dy.m, nullptr, &dx.m);
  r.dx = to_host(dx.m);
  if (c.affine) {
    const std::string bn = c.shape.size() == 3 ? "layers.1." : "layers.0.";
    r.dgamma = m.gradients().tensor_to_host(bn + "weight");
    r.dbeta = m.gradients().tensor_to_host(bn + "bias");
  }
  return r;
}

void expect_formula(Device device) {
  for (const Case& c : kCases) {
    const std::int64_t batch = 5, f = numel(c.shape), channels = c.shape[0];
    const std::int64_t plane = f / channels;
    const std::vector<float> xs = testing::normal(static_cast<std::size_t>(batch * f), 21);
    const std::vector<float> dys = testing::normal(xs.size(), 22);
    const Result r = eval_backward(c, device, xs, dys, batch);
    std::vector<double> dgamma(static_cast<std::size_t>(channels)), dbeta(dgamma.size());
    std::size_t cut = 0;
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t k = 0; k < channels; ++k)
        for (std::int64_t p = 0; p < plane; ++p) {
          const auto i = static_cast<std::size_t>((n * channels + k) * plane + p);
          const auto kk = static_cast<double>(k);
          const double mean = 0.3F * static_cast<float>(k) - 0.4F;
          const double invstd = 1.0 / std::sqrt(double{0.5F + 0.7F * static_cast<float>(k)} + 1e-5);
          const double w = c.affine ? double{1.5F - 0.4F * static_cast<float>(k)} : 1.0;
          const double b = c.affine ? 0.1 * kk : 0.0;
          const double pre = w * (xs[i] - mean) * invstd + b;
          const double y = c.relu ? std::max(pre, 0.0) : pre;
          const double g = c.relu && pre <= 0 ? 0.0 : dys[i];  // below the ReLU
          cut += c.relu && pre <= 0 ? 1 : 0;
          EXPECT_NEAR(r.y[i], y, 1e-5 * (1 + std::abs(y))) << c.name << " y " << i;
          EXPECT_NEAR(r.dx[i], w * invstd * g, 1e-6 * (1 + std::abs(w * invstd * g)))
              << c.name << " dx " << i;
          dgamma[static_cast<std::size_t>(k)] += g * (xs[i] - mean) * invstd;
          dbeta[static_cast<std::size_t>(k)] += g;
        }
    if (c.relu) {
      EXPECT_GT(cut, xs.size() / 5) << c.name;  // the ReLU cuts
    }
    for (std::size_t k = 0; c.affine && k < dgamma.size(); ++k) {
      EXPECT_NEAR(r.dgamma[k], dgamma[k], 1e-5 * (1 + std::abs(dgamma[k]))) << c.name << " " << k;
      EXPECT_NEAR(r.dbeta[k], dbeta[k], 1e-5 * (1 + std::abs(dbeta[k]))) << c.name << " " << k;
    }
  }
}

TEST(BatchNormEval, BackwardHoldsTheRunningStatisticsConstant) {
  expect_formula(Device::cpu());
}

// Finite differences of the eval-mode forward, the layer inside a model whose statistics a few
// training passes moved.
TEST(BatchNormEval, GradientsAreThoseOfTheEvalForward) {
  const Shape image{2, 5, 5};
  Sequential m(numel(image));
  m.emplace<Unflatten>(1, image).emplace<Conv2d>(2, 3, 3, 1, 1).emplace<BatchNorm2d>(3);
  m.emplace<Activation>(Activation::Kind::kRelu).emplace<Flatten>();
  m.emplace<Linear>(75, 6).emplace<BatchNorm1d>(6).emplace<Activation>(Activation::Kind::kTanh);
  m.emplace<Linear>(6, 3);
  m.build(Device::cpu(), 9);
  m.parameters().tensor_from_host("layers.2.weight", std::vector<float>{1.5F, 0.7F, -0.8F});
  m.parameters().tensor_from_host("layers.6.weight", testing::normal(6, 8));
  for (std::uint64_t s = 0; s < 3; ++s) {
    DeviceMatrix x(testing::normal(static_cast<std::size_t>(8 * numel(image)), 40 + s), 8,
                   numel(image), Device::cpu());
    for (float& v : std::span(x.m.data, x.m.size())) v = 2 * v + 1;  // statistics away from 0, 1
    m.forward(x.m);
  }
  m.eval();
  const GradCheckResult r = check_gradients(m, {.batch = 3, .seed = 5, .per_tensor = 0});
  EXPECT_TRUE(r.passed) << r.worst;
  EXPECT_GT(r.checked, 200U);
}

TEST(BatchNormEvalGpu, BackwardIsTheCpuOne) {
  CUTRAIN_REQUIRE_GPU();
  expect_formula(Device::cuda(0));
  for (const Case& c : kCases) {
    const std::int64_t batch = 300, f = numel(c.shape);  // several segments per channel
    const std::vector<float> xs = testing::normal(static_cast<std::size_t>(batch * f), 31);
    const std::vector<float> dys = testing::normal(xs.size(), 32);
    const Result a = eval_backward(c, Device::cpu(), xs, dys, batch);
    const Result b = eval_backward(c, Device::cuda(0), xs, dys, batch);
    EXPECT_EQ(a.y, b.y) << c.name;
    EXPECT_EQ(a.dx, b.dx) << c.name;
    EXPECT_EQ(a.dgamma, b.dgamma) << c.name;
    EXPECT_EQ(a.dbeta, b.dbeta) << c.name;
  }
}

}  // namespace
}  // namespace cutrain::nn
