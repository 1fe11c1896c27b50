// Every layer and loss against PyTorch goldens (make_layer_goldens.py), finite-difference
// gradient checks on the CPU, and CPU/GPU agreement.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "cutrain/error.hpp"
#include "kernels/nn/activation.cuh"
#include "kernels/nn/column_sum.cuh"
#include "kernels/nn/loss.cuh"
#include "nn_fixture.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceLabels;
using testing::DeviceMatrix;
using testing::floats;
using testing::layer_goldens;
using testing::to_host;

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i])) << what << " [" << i << "]";
}

std::string suffix(const std::string& name);

// A one-layer model whose parameters and buffers are set from a golden case.
Sequential one_layer(std::unique_ptr<Layer> layer, std::int64_t in, const nlohmann::json& c,
                     Device device) {
  Sequential m(in);
  m.add(std::move(layer));
  m.build(device, 1);
  for (const auto& t : m.parameters().layout().tensors())
    m.parameters().tensor_from_host(t.name, floats(c.at("param." + suffix(t.name))));
  for (const auto& t : m.buffers().layout().tensors()) {
    const std::string s = suffix(t.name);
    const std::string key = c.contains("buffer_in." + s) ? "buffer_in." + s : "buffer." + s;
    m.buffers().tensor_from_host(t.name, floats(c.at(key)));
  }
  return m;
}

struct LayerRun {
  std::vector<float> y, dx;
  std::vector<std::vector<float>> grads, buffers;
};

LayerRun run_layer(Sequential& m, const nlohmann::json& c, Device device, bool backward = true) {
  const std::vector<std::int64_t> shape = c.at("x_shape");
  DeviceMatrix x(floats(c.at("x")), shape[0], shape[1], device);
  LayerRun r;
  const Matrix& y = m.forward(x.m);
  r.y = to_host(y);
  if (backward) {
    DeviceMatrix dy(floats(c.at("dy")), y.rows, y.cols, device);
    DeviceMatrix dx(shape[0], shape[1], device);
    m.backward(dy.m, nullptr, &dx.m);
    r.dx = to_host(dx.m);
    r.grads = testing::all_tensors(m.gradients());
  }
  r.buffers = testing::all_tensors(m.buffers());
  return r;
}

std::string suffix(const std::string& name) {
  return name.substr(name.rfind('.') + 1);
}

void check_layer_golden(const std::string& name, std::unique_ptr<Layer> layer, Device device,
                        double rtol) {
  const auto& c = layer_goldens().at(name);
  const std::vector<std::int64_t> shape = c.at("x_shape");
  Sequential m = one_layer(std::move(layer), shape[1], c, device);
  const LayerRun r = run_layer(m, c, device);
  expect_close(r.y, floats(c.at("y")), rtol, 1e-6, name + " y");
  expect_close(r.dx, floats(c.at("dx")), rtol, 1e-6, name + " dx");
  std::size_t k = 0;
  for (const auto& t : m.gradients().layout().tensors())
    expect_close(r.grads[k++], floats(c.at("grad." + suffix(t.name))), rtol, 1e-5,
                 name + " grad " + t.name);
  k = 0;
  for (const auto& t : m.buffers().layout().tensors())
    expect_close(r.buffers[k++], floats(c.at("buffer." + suffix(t.name))), rtol, 1e-6,
                 name + " " + t.name);
}

void check_all_goldens(Device device) {
  check_layer_golden("linear", std::make_unique<Linear>(5, 3), device, 1e-5);
  check_layer_golden("linear_nobias", std::make_unique<Linear>(5, 3, false), device, 1e-5);
  check_layer_golden("relu", std::make_unique<Activation>(Activation::Kind::kRelu), device, 1e-6);
  check_layer_golden("leaky_relu", std::make_unique<Activation>(Activation::Kind::kLeakyRelu, 0.1F),
                     device, 1e-6);
  check_layer_golden("tanh", std::make_unique<Activation>(Activation::Kind::kTanh), device, 1e-5);
  check_layer_golden("sigmoid", std::make_unique<Activation>(Activation::Kind::kSigmoid), device,
                     1e-5);
  check_layer_golden("gelu", std::make_unique<Activation>(Activation::Kind::kGelu), device, 1e-5);
  check_layer_golden("silu", std::make_unique<Activation>(Activation::Kind::kSilu), device, 1e-5);
  check_layer_golden("relu6", std::make_unique<Activation>(Activation::Kind::kRelu6), device, 1e-6);
  check_layer_golden("hardswish", std::make_unique<Activation>(Activation::Kind::kHardswish),
                     device, 1e-6);
  check_layer_golden("elu", std::make_unique<Activation>(Activation::Kind::kElu), device, 1e-5);
  check_layer_golden("elu_alpha", std::make_unique<Activation>(Activation::Kind::kElu, 0.3F),
                     device, 1e-5);
  check_layer_golden("batchnorm_train", std::make_unique<BatchNorm1d>(5), device, 1e-5);
}

// At their kinks the new activations take PyTorch's scalar and CUDA formulas' side: ReLU6 passes
// dy on (0, 6) only (hardtanh's), Hardswish's middle piece x / 3 + 1/2 holds on [-3, 3] (so -dy/2
// and 3 dy / 2 at the ends; PyTorch 1.13's CPU vector path gives dy at 3), ELU's exponential
// piece holds at 0 (alpha dy).
TEST(Layers, ActivationKinksTakeTheFormulasSide) {
  using A = rules::Activation;
  auto grad = [](A a, float x, float param = 0.0F) {
    return rules::activation_backward(a, x, rules::activation_forward(a, x, param), 2.0F, param);
  };
  EXPECT_EQ(grad(A::kRelu6, 0.0F), 0.0F);
  EXPECT_EQ(grad(A::kRelu6, 6.0F), 0.0F);
  EXPECT_EQ(grad(A::kRelu6, 5.5F), 2.0F);
  EXPECT_EQ(rules::activation_forward(A::kRelu6, 7.0F, 0), 6.0F);
  EXPECT_EQ(grad(A::kHardswish, -3.0F), -1.0F);
  EXPECT_EQ(grad(A::kHardswish, 3.0F), 3.0F);
  EXPECT_EQ(grad(A::kHardswish, -3.5F), 0.0F);
  EXPECT_EQ(grad(A::kHardswish, 3.5F), 2.0F);
  EXPECT_EQ(rules::activation_forward(A::kHardswish, -3.0F, 0), 0.0F);
  EXPECT_EQ(rules::activation_forward(A::kHardswish, 3.0F, 0), 3.0F);
  EXPECT_EQ(grad(A::kElu, 0.0F, 0.3F), 2.0F * 0.3F);
  EXPECT_EQ(rules::activation_forward(A::kElu, 0.0F, 0.3F), 0.0F);
  // expm1: exact near 0, where exp(x) - 1 would cancel to 0 or a multiple of 2^-24.
  EXPECT_FLOAT_EQ(rules::activation_forward(A::kElu, -1e-8F, 1.0F), -1e-8F);
}

TEST(Layers, MatchPyTorchOnCpu) {
  check_all_goldens(Device::cpu());
}

void check_batchnorm_eval(Device device) {
  const auto& c = layer_goldens().at("batchnorm_eval");
  Sequential m = one_layer(std::make_unique<BatchNorm1d>(5), 5, c, device);
  m.eval();
  const LayerRun r = run_layer(m, c, device, /*backward=*/false);
  expect_close(r.y, floats(c.at("y")), 1e-5, 1e-6, "batchnorm eval");
}
TEST(Layers, BatchNormEvalMatchesPyTorch) {
  check_batchnorm_eval(Device::cpu());
}

void check_losses(Device device) {
  for (const char* name : {"cross_entropy_0.0", "cross_entropy_0.1", "cross_entropy_weighted_0.0",
                           "cross_entropy_weighted_0.1"}) {
    const auto& c = layer_goldens().at(name);
    DeviceMatrix logits(floats(c.at("x")), 5, 4, device);
    DeviceLabels labels(c.at("labels").get<std::vector<std::int32_t>>(), device);
    DeviceMatrix grad(5, 4, device);
    SoftmaxCrossEntropy loss(c.at("eps").get<float>(), c.contains("weights")
                                                           ? floats(c.at("weights"))
                                                           : std::vector<float>{});
    loss.compute(logits.m, labels.data(), &grad.m);
    EXPECT_NEAR(loss.value(), c.at("loss").get<double>(), 1e-5 * c.at("loss").get<double>())
        << name;
    expect_close(to_host(grad.m), floats(c.at("dx")), 1e-5, 1e-7, name);
  }
  const auto& c = layer_goldens().at("mse");
  DeviceMatrix out(floats(c.at("x")), 3, 4, device), target(floats(c.at("target")), 3, 4, device);
  DeviceMatrix grad(3, 4, device);
  MseLoss mse;
  mse.compute(out.m, target.m, &grad.m);
  EXPECT_NEAR(mse.value(), c.at("loss").get<double>(), 1e-6 * c.at("loss").get<double>());
  expect_close(to_host(grad.m), floats(c.at("dx")), 1e-6, 1e-8, "mse");
}
TEST(Losses, MatchPyTorchOnCpu) {
  check_losses(Device::cpu());
}

// ---- finite differences -----------------------------------------------------------------------
// nn::check_gradients (tests/nn/gradcheck_test.cpp shows it fails wrong backwards): every layer's
// parameter and input gradients against central differences, ReLU-family kinks skipped.

TEST(FiniteDifferences, EveryLayer) {
  auto check = [](std::unique_ptr<Layer> layer, std::int64_t in, const char* what) {
    SCOPED_TRACE(what);
    Sequential m(in);
    m.add(std::make_unique<Linear>(in, 6));  // gives the layer's input a gradient path
    m.add(std::move(layer));
    m.build(Device::cpu(), 42);
    const GradCheckResult r = check_gradients(m, {.batch = 5, .seed = 7, .per_tensor = 0});
    EXPECT_TRUE(r.passed) << r.worst << "; " << r.kinks << " kinks of " << r.kinks + r.checked;
  };
  check(std::make_unique<Linear>(6, 4), 3, "Linear");
  check(std::make_unique<Activation>(Activation::Kind::kRelu), 3, "ReLU");
  check(std::make_unique<Activation>(Activation::Kind::kLeakyRelu, 0.2F), 3, "LeakyReLU");
  check(std::make_unique<Activation>(Activation::Kind::kTanh), 3, "Tanh");
  check(std::make_unique<Activation>(Activation::Kind::kSigmoid), 3, "Sigmoid");
  check(std::make_unique<Activation>(Activation::Kind::kGelu), 3, "GELU");
  check(std::make_unique<Activation>(Activation::Kind::kSilu), 3, "SiLU");
  check(std::make_unique<Activation>(Activation::Kind::kRelu6), 3, "ReLU6");
  check(std::make_unique<Activation>(Activation::Kind::kHardswish), 3, "Hardswish");
  check(std::make_unique<Activation>(Activation::Kind::kElu, 0.7F), 3, "ELU");
  check(std::make_unique<BatchNorm1d>(6), 3, "BatchNorm1d");
  check(std::make_unique<Dropout>(0.4F), 3, "Dropout");
}

// End to end: a 3-layer model under softmax cross-entropy.
TEST(FiniteDifferences, ThreeLayerModelWithCrossEntropy) {
  Sequential m(8);
  m.emplace<Linear>(8, 16).emplace<Activation>(Activation::Kind::kTanh);
  m.emplace<Linear>(16, 12).emplace<Activation>(Activation::Kind::kGelu);
  m.emplace<Linear>(12, 5);
  m.build(Device::cpu(), 3);
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> xs(6 * 8);
  for (float& v : xs) v = normal(rng);
  const std::vector<std::int32_t> labels = {0, 4, 2, 1, 3, 0};
  DeviceMatrix x(xs, 6, 8, Device::cpu());
  DeviceMatrix grad(6, 5, Device::cpu());
  SoftmaxCrossEntropy loss;
  auto loss_at = [&] {
    loss.compute(m.forward(x.m), labels.data(), nullptr);
    return static_cast<double>(loss.value());
  };
  loss.compute(m.forward(x.m), labels.data(), &grad.m);
  m.backward(grad.m);
  const std::vector<float> analytic = m.gradients().to_host();
  std::vector<float> p = m.parameters().to_host();
  const float h = 1e-2F;
  for (const auto& t : m.parameters().layout().tensors()) {
    for (std::size_t j = 0; j < t.numel; j += 7) {
      const std::size_t i = t.offset + j;
      const float saved = p[i];
      p[i] = saved + h;
      m.parameters().from_host(p);
      const double up = loss_at();
      p[i] = saved - h;
      m.parameters().from_host(p);
      const double down = loss_at();
      p[i] = saved;
      m.parameters().from_host(p);
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(analytic[i], numeric, 2e-2 * std::max(0.05, std::fabs(numeric)))
          << t.name << "[" << j << "]";
    }
  }
}

// Linear's bias gradient is the column sum of dy over the batch (Note [column sums in chunks]):
// batches smaller than, equal to and not divisible by the chunk count, widths across a
// 32-column block edge, against a float64 sum of the same numbers.
std::vector<std::vector<float>> bias_gradients(Device device) {
  std::vector<std::vector<float>> out;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  for (const std::int64_t batch : {1, 3, 8, 13, 257}) {
    for (const std::int64_t width : {1, 33, 100}) {
      Sequential m(4);
      m.emplace<Linear>(4, width);
      m.build(device, 1);
      std::vector<float> xs(static_cast<std::size_t>(batch * 4), 0.5F);
      std::vector<float> dys(static_cast<std::size_t>(batch * width));
      for (float& v : dys) v = normal(rng) * 100.0F;
      DeviceMatrix x(xs, batch, 4, device), dy(dys, batch, width, device);
      m.forward(x.m);
      m.backward(dy.m);
      const std::vector<float> db = m.gradients().tensor_to_host("layers.0.bias");
      for (std::int64_t c = 0; c < width; ++c) {
        // The CPU loop is blocked across columns; per column it must be the rule itself.
        EXPECT_EQ(db[static_cast<std::size_t>(c)], rules::column_sum(dys.data() + c, batch, width))
            << "batch " << batch << " width " << width << " column " << c;
        double want = 0;
        for (std::int64_t r = 0; r < batch; ++r)
          want += dys[static_cast<std::size_t>(r * width + c)];
        EXPECT_NEAR(db[static_cast<std::size_t>(c)], want, 1e-6 * std::fabs(want) + 1e-6)
            << "batch " << batch << " width " << width << " column " << c;
      }
      out.push_back(db);
    }
  }
  return out;
}

// Note [evaluation on the device]: a row counts as correct exactly when std::max_element (what
// evaluation used on the host) picks its label - ties to the lowest class, NaNs never winning
// after the first position.
TEST(Losses, RowCorrectIsMaxElement) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> small(0, 3);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<float> row(7);
    for (float& v : row) v = static_cast<float>(small(rng));  // many ties
    if (trial % 5 == 0) row[static_cast<std::size_t>(trial % 7)] = std::nanf("");
    const auto want = std::max_element(row.begin(), row.end()) - row.begin();
    for (int label = 0; label < 7; ++label)
      ASSERT_EQ(rules::row_correct(row.data(), 7, label), label == want)
          << "trial " << trial << " label " << label;
  }
}

TEST(Layers, BiasGradientSumsEveryRow) {
  bias_gradients(Device::cpu());
}

// ---- GPU ----------------------------------------------------------------------------------------
TEST(LayersGpu, MatchPyTorch) {
  CUTRAIN_REQUIRE_GPU();
  check_all_goldens(Device::cuda(0));
  check_batchnorm_eval(Device::cuda(0));
  check_losses(Device::cuda(0));
}

// The bias gradient adds the same numbers in the same order on both backends: bit for bit.
TEST(LayersGpu, BiasGradientSumsEveryRowAsTheCpuDoes) {
  CUTRAIN_REQUIRE_GPU();
  EXPECT_EQ(bias_gradients(Device::cuda(0)), bias_gradients(Device::cpu()));
}

// The same model and batch on both backends. GEMM accumulation orders differ between OpenBLAS
// and cuBLAS (and transcendental functions between glibc and CUDA), so agreement is to a few
// float ulps relative to each tensor's scale, not bit for bit.
TEST(LayersGpu, CpuAndGpuAgree) {
  CUTRAIN_REQUIRE_GPU();
  auto make = [] {
    Sequential m(20);
    m.emplace<Linear>(20, 64).emplace<BatchNorm1d>(64).emplace<Activation>(Activation::Kind::kGelu);
    m.emplace<Linear>(64, 32).emplace<Activation>(Activation::Kind::kSigmoid);
    m.emplace<Linear>(32, 10);
    return m;
  };
  Sequential cpu = make(), gpu = make();
  cpu.build(Device::cpu(), 5);
  gpu.build(Device::cuda(0), 5);
  gpu.parameters().copy_from(cpu.parameters());
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> xs(33 * 20);
  for (float& v : xs) v = normal(rng);
  std::vector<std::int32_t> labels(33);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
  float losses[2];
  std::vector<float> grads[2];
  int k = 0;
  for (Sequential* m : {&cpu, &gpu}) {
    const Device d = m->device();
    DeviceMatrix x(xs, 33, 20, d), g(33, 10, d);
    DeviceLabels l(labels, d);
    SoftmaxCrossEntropy loss;
    loss.compute(m->forward(x.m), l.data(), &g.m);
    m->backward(g.m);
    losses[k] = loss.value();
    grads[k++] = m->gradients().to_host();
  }
  EXPECT_NEAR(losses[1], losses[0], 1e-5 * losses[0]);
  double scale = 0;
  for (const float v : grads[0]) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (std::size_t i = 0; i < grads[0].size(); ++i)
    ASSERT_NEAR(grads[1][i], grads[0][i], 1e-5 * scale) << i;
}

}  // namespace
}  // namespace cutrain::nn
