// nn::check_gradients: it passes correct layers (built-in and custom), fails custom layers whose
// backward is wrong - naming the coordinate - skips ReLU kinks instead of failing them, and leaves
// the model as it found it.
#include "cutrain/nn/gradcheck.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

// y = x^3 element-wise; `wrong` uses 2 x^2 for the derivative (should be 3 x^2). Host loops:
// a CPU-only custom layer, as a user's first draft would be.
class Cube final : public Layer {
 public:
  explicit Cube(bool wrong) : wrong_(wrong) {}
  std::string kind() const override { return "Cube"; }
  void forward(LayerContext& /*ctx*/, const Matrix& x, Matrix& y) override {
    for (std::size_t i = 0; i < x.size(); ++i) y.data[i] = x.data[i] * x.data[i] * x.data[i];
  }
  void backward(LayerContext& /*ctx*/, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                Matrix& dx) override {
    if (dx.data == nullptr) return;
    const float k = wrong_ ? 2.0F : 3.0F;
    for (std::size_t i = 0; i < x.size(); ++i) dx.data[i] = k * x.data[i] * x.data[i] * dy.data[i];
  }

 private:
  bool wrong_;
};

// y = a * x + c per feature (parameters a, c); `wrong` forgets the factor x in da.
class Affine final : public Layer {
 public:
  Affine(std::int64_t features, bool wrong) : n_(features), wrong_(wrong) {}
  std::string kind() const override { return "Affine"; }
  void declare(Declarations& d) const override {
    d.parameter("a", {n_});
    d.parameter("c", {n_}, kNoDecayGroup);
  }
  void initialize(LayerContext& ctx, std::uint64_t /*seed*/) override {
    float* a = ctx.parameter("a").data;
    for (std::int64_t j = 0; j < n_; ++j) a[j] = 0.5F + 0.25F * static_cast<float>(j);
  }
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override {
    const float* a = ctx.parameter("a").data;
    const float* c = ctx.parameter("c").data;
    for (std::int64_t r = 0; r < x.rows; ++r)
      for (std::int64_t j = 0; j < n_; ++j) y.data[r * n_ + j] = a[j] * x.data[r * n_ + j] + c[j];
  }
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                Matrix& dx) override {
    const float* a = ctx.parameter("a").data;
    float* da = ctx.gradient("a").data;
    float* dc = ctx.gradient("c").data;
    for (std::int64_t j = 0; j < n_; ++j) {
      da[j] = 0.0F;
      dc[j] = 0.0F;
    }
    for (std::int64_t r = 0; r < x.rows; ++r)
      for (std::int64_t j = 0; j < n_; ++j) {
        const std::int64_t i = r * n_ + j;
        da[j] += wrong_ ? dy.data[i] : dy.data[i] * x.data[i];
        dc[j] += dy.data[i];
        if (dx.data != nullptr) dx.data[i] = a[j] * dy.data[i];
      }
  }

 private:
  std::int64_t n_;
  bool wrong_;
};

// A forward that draws from its own counter instead of LayerContext::step(): not a function.
class Jitter final : public Layer {
 public:
  std::string kind() const override { return "Jitter"; }
  void forward(LayerContext& /*ctx*/, const Matrix& x, Matrix& y) override {
    ++calls_;
    for (std::size_t i = 0; i < x.size(); ++i)
      y.data[i] = x.data[i] + 1e-3F * static_cast<float>(calls_);
  }
  void backward(LayerContext& /*ctx*/, const Matrix& /*x*/, const Matrix& /*y*/, const Matrix& dy,
                Matrix& dx) override {
    if (dx.data != nullptr)
      for (std::size_t i = 0; i < dy.size(); ++i) dx.data[i] = dy.data[i];
  }

 private:
  int calls_ = 0;
};

void expect_error(const std::function<void()>& f, const std::string& text) {
  const std::string message = testing::error_of(f);
  EXPECT_NE(message.find(text), std::string::npos) << message;
}

bool mentions(const GradCheckResult& r, const std::string& text) {
  for (const std::string& f : r.failures)
    if (f.find(text) != std::string::npos) return true;
  return false;
}

TEST(GradCheck, CorrectCustomLayersPass) {
  Sequential m(3);
  m.emplace<Linear>(3, 5).emplace<Cube>(false).emplace<Affine>(5, false);
  m.build(Device::cpu(), 1);
  const GradCheckResult r = check_gradients(m, {.per_tensor = 0});
  EXPECT_TRUE(r.passed) << r.worst;
  EXPECT_TRUE(r.failures.empty());
  // Every coordinate: 15 + 5 weights and biases, 5 + 5 of Affine, 4 x 3 inputs.
  EXPECT_EQ(r.checked + r.kinks, 15U + 5U + 5U + 5U + 12U);
  EXPECT_LE(r.max_error_ratio, 1.0);
}

TEST(GradCheck, WrongInputGradientFailsNamingTheCoordinates) {
  Sequential m(3);
  m.emplace<Linear>(3, 5).emplace<Cube>(true);
  m.build(Device::cpu(), 1);
  const GradCheckResult r = check_gradients(m);
  EXPECT_FALSE(r.passed);
  // dL/dx and the first layer's gradients flow through the wrong derivative: off by 2/3.
  EXPECT_TRUE(mentions(r, "input[")) << r.worst;
  EXPECT_TRUE(mentions(r, "layers.0.weight[")) << r.worst;
  EXPECT_GT(r.max_error_ratio, 1.0);
}

TEST(GradCheck, WrongParameterGradientFailsOnlyThatTensor) {
  Sequential m(4);
  m.emplace<Affine>(4, true);
  m.build(Device::cpu(), 1);
  const GradCheckResult r = check_gradients(m, {.per_tensor = 0});
  EXPECT_FALSE(r.passed);
  ASSERT_FALSE(r.failures.empty());
  for (const std::string& f : r.failures)
    EXPECT_EQ(f.rfind("layers.0.a[", 0), 0U) << f;  // c's and the input's gradients are right
  EXPECT_EQ(r.worst.rfind("layers.0.a[", 0), 0U) << r.worst;
  // Behind a ReLU, whose kinks are skipped, the wrong gradient is still caught.
  Sequential relu(3);
  relu.emplace<Linear>(3, 6).emplace<Activation>(Activation::Kind::kRelu).emplace<Affine>(6, true);
  relu.build(Device::cpu(), 4);
  const GradCheckResult behind = check_gradients(relu, {.batch = 8, .per_tensor = 0});
  EXPECT_FALSE(behind.passed);
  EXPECT_TRUE(mentions(behind, "layers.2.a[")) << behind.worst;
}

TEST(GradCheck, BuiltInLayersPassInTrainingMode) {
  Sequential m(6);
  m.emplace<Linear>(6, 8).emplace<BatchNorm1d>(8).emplace<Activation>(Activation::Kind::kTanh);
  m.emplace<Dropout>(0.3F).emplace<Linear>(8, 7).emplace<Activation>(Activation::Kind::kGelu);
  m.emplace<Linear>(7, 3);
  m.build(Device::cpu(), 5);
  const GradCheckResult r = check_gradients(m, {.batch = 6, .seed = 3});
  EXPECT_TRUE(r.passed) << r.worst << " (" << r.failures.size() << " failures)";
  EXPECT_GT(r.checked, 100U);
}

// A piecewise-linear model is its own central difference except at kinks; a step large enough
// to cross many makes kinks, which are skipped, never failed.
TEST(GradCheck, ReluKinksAreSkippedNotFailed) {
  Sequential m(4);
  m.emplace<Linear>(4, 16).emplace<Activation>(Activation::Kind::kRelu).emplace<Linear>(16, 2);
  m.build(Device::cpu(), 2);
  const GradCheckResult small = check_gradients(m, {.batch = 8, .per_tensor = 0});
  EXPECT_TRUE(small.passed) << small.worst;
  const GradCheckResult large = check_gradients(m, {.batch = 8, .step = 0.2F, .per_tensor = 0});
  EXPECT_TRUE(large.failures.empty()) << large.worst;
  EXPECT_GT(large.kinks, small.kinks);
}

TEST(GradCheck, LeavesTheModelAsItFoundIt) {
  Sequential m(5);
  m.emplace<Linear>(5, 6).emplace<BatchNorm1d>(6).emplace<Dropout>(0.5F).emplace<Linear>(6, 2);
  m.build(Device::cpu(), 9);
  m.set_forward_count(17);
  m.set_training_forward_count(11);
  std::vector<float> grads(m.gradients().to_host().size(), 0.25F);
  m.gradients().from_host(grads);
  const std::vector<float> params = m.parameters().to_host();
  const std::vector<float> buffers = m.buffers().to_host();
  check_gradients(m);
  EXPECT_EQ(m.parameters().to_host(), params);
  EXPECT_EQ(m.gradients().to_host(), grads);
  EXPECT_EQ(m.buffers().to_host(), buffers);  // BatchNorm's running statistics
  EXPECT_EQ(m.forward_count(), 17U);
  EXPECT_EQ(m.training_forward_count(), 11U);
}

TEST(GradCheck, RefusesANonDeterministicForwardAndBadOptions) {
  Sequential m(3);
  m.emplace<Linear>(3, 3).emplace<Jitter>();
  m.build(Device::cpu(), 1);
  expect_error([&] { check_gradients(m); }, "not a function of its input");
  Sequential ok(2);
  ok.emplace<Linear>(2, 2);
  ok.build(Device::cpu(), 1);
  expect_error([&] { check_gradients(ok, {.batch = 0}); }, "batch = 0");
  expect_error([&] { check_gradients(ok, {.step = 0.0F}); }, "step = 0");
  expect_error([&] { check_gradients(ok, {.rtol = 0, .atol = 0}); }, "not both 0");
  Sequential unbuilt(2);
  unbuilt.emplace<Linear>(2, 2);
  expect_error([&] { check_gradients(unbuilt); }, "build() the model first");
}

// The same checks through the GPU's kernels and cuBLAS(Lt) - the fused Linear+ReLU epilogue
// and the Dropout kernel included.
TEST(GradCheckGpu, BuiltInLayersPass) {
  CUTRAIN_REQUIRE_GPU();
  Sequential m(6);
  m.emplace<Linear>(6, 8).emplace<Activation>(Activation::Kind::kRelu).emplace<Dropout>(0.3F);
  m.emplace<Linear>(8, 8).emplace<BatchNorm1d>(8).emplace<Activation>(Activation::Kind::kSigmoid);
  m.emplace<Linear>(8, 3);
  m.build(Device::cuda(0), 5);
  const GradCheckResult r = check_gradients(m, {.batch = 6, .seed = 3});
  EXPECT_TRUE(r.passed) << r.worst << " (" << r.failures.size() << " failures)";
  EXPECT_GT(r.checked, 100U);
}

}  // namespace
}  // namespace cutrain::nn
