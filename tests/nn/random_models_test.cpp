// Property: every model cutrain can build has the gradients of its forward pass. Seeded random
// architectures - convolutions of random kernels, strides, paddings, dilations and biases, max and
// average pooling (padded, overlapping), adaptive pooling to random sizes, BatchNorm 1d / 2d,
// Dropout, the smooth activations, nested residual blocks, blocks with projection shortcuts,
// Flatten / Unflatten, Linear - each built
// for a random input shape and checked coordinate by coordinate against central differences
// (nn::check_gradients), parameters and the input both, in training mode (batch statistics, the
// masks of one draw) - and every third in eval mode (BatchNorm's running statistics, moved by a
// few training passes, held constant; Dropout the identity). The layer tests check each layer
// alone; this checks them in the orders and geometries nobody wrote down.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "cutrain/nn/gradcheck.hpp"

namespace cutrain::nn {
namespace {

using Rng = std::mt19937_64;

std::int64_t uniform(Rng& rng, std::int64_t lo, std::int64_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}
bool chance(Rng& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

// The smooth activations. A kink (ReLU's, LeakyReLU's) the check skips rather than fails, and in
// a composition of several a step of the difference quotient crosses one for a third of the
// coordinates (a kink on each side of the step is not always recognized as one); the kinked
// activations have their own checks (layers_test, GradCheck.ReluKinksAreSkippedNotFailed).
// Max pooling stays: its kinks are ties, which random values make rare.
Activation::Kind any_activation(Rng& rng) {
  constexpr Activation::Kind kKinds[] = {Activation::Kind::kTanh, Activation::Kind::kSigmoid,
                                         Activation::Kind::kGelu, Activation::Kind::kSilu,
                                         Activation::Kind::kElu};  // alpha 1: C1 at 0
  return kKinds[uniform(rng, 0, 4)];
}

// Output size of one spatial dimension, PyTorch's formula; 0 where the window spans more than
// the padded input.
std::int64_t out_size(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p,
                      std::int64_t d) {
  const std::int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

// Appends a random image layer valid for `shape` ({C, H, W}) to `add`, updating `shape`;
// `describe` collects the architecture for the failure message.
// A layer that keeps a sample's shape [c, h, w]: a residual body's.
std::unique_ptr<Layer> shape_keeping_layer(Rng& rng, std::int64_t c, std::ostringstream& describe) {
  switch (uniform(rng, 0, 3)) {
    case 0: {
      const std::int64_t k = chance(rng, 0.5) ? 3 : 1;
      const bool bias = chance(rng, 0.5);
      const std::int64_t groups = chance(rng, 0.3) ? c : 1;  // depthwise
      describe << "Conv2d(" << c << "," << c << ",k=" << k << ",p=" << k / 2 << ",g=" << groups
               << ",bias=" << bias << ") ";
      return std::make_unique<Conv2d>(c, c, k, 1, k / 2, 1, bias, groups);
    }
    case 1:
      describe << "BatchNorm2d(" << c << ") ";
      return std::make_unique<BatchNorm2d>(c);
    case 2: {
      const Activation::Kind kind = any_activation(rng);
      describe << Activation(kind).kind() << " ";
      return std::make_unique<Activation>(kind);
    }
    default:
      describe << "Dropout ";
      return std::make_unique<Dropout>(0.3F);
  }
}

// x + body(x), the body's layers keeping the shape; a block may nest another (Residuals nest).
std::unique_ptr<Residual> residual_block(Rng& rng, std::int64_t c, int depth,
                                         std::ostringstream& describe) {
  auto block = std::make_unique<Residual>();
  describe << "Residual[ ";
  const int n = static_cast<int>(uniform(rng, 1, 3));
  for (int j = 0; j < n; ++j) {
    if (depth == 0 && chance(rng, 0.2))
      block->add(residual_block(rng, c, depth + 1, describe));
    else
      block->add(shape_keeping_layer(rng, c, describe));
  }
  describe << "] ";
  return block;
}

using Add = std::function<void(std::unique_ptr<Layer>)>;

void add_image_layer(Rng& rng, Shape& shape, std::ostringstream& describe, const Add& add) {
  const std::int64_t c = shape[0];
  const std::int64_t h = shape[1];
  const std::int64_t w = shape[2];
  switch (uniform(rng, 0, 8)) {
    case 0:
    case 1: {  // Conv2d of random geometry that fits
      const std::int64_t kh = uniform(rng, 1, std::min<std::int64_t>(3, h + 2));
      const std::int64_t kw = uniform(rng, 1, std::min<std::int64_t>(3, w + 2));
      const std::int64_t sh = uniform(rng, 1, 2);
      const std::int64_t sw = uniform(rng, 1, 2);
      const std::int64_t ph = uniform(rng, 0, kh / 2 + 1);
      const std::int64_t pw = uniform(rng, 0, kw / 2 + 1);
      std::int64_t dh = chance(rng, 0.25) ? 2 : 1;
      std::int64_t dw = chance(rng, 0.25) ? 2 : 1;
      if (out_size(h, kh, sh, ph, dh) < 1) dh = 1;
      if (out_size(w, kw, sw, pw, dw) < 1) dw = 1;
      if (out_size(h, kh, sh, ph, dh) < 1 || out_size(w, kw, sw, pw, dw) < 1) return;
      const std::int64_t out = uniform(rng, 1, 4);
      const bool bias = chance(rng, 0.7);
      // Grouped or depthwise a third of the time: a common divisor of both channel counts.
      std::int64_t groups = 1;
      if (chance(rng, 0.33)) {
        groups = uniform(rng, 1, std::min(c, out));
        while (c % groups != 0 || out % groups != 0) --groups;
      }
      add(std::make_unique<Conv2d>(c, out, Size2{kh, kw}, Size2{sh, sw}, Size2{ph, pw},
                                   Size2{dh, dw}, bias, groups));
      describe << "Conv2d(" << c << "," << out << ",k=" << kh << "x" << kw << ",s=" << sh << "x"
               << sw << ",p=" << ph << "x" << pw << ",d=" << dh << "x" << dw << ",g=" << groups
               << ",bias=" << bias << ") ";
      shape = {out, out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)};
      return;
    }
    case 2: {  // MaxPool2d / AvgPool2d: padding at most half the kernel, as PyTorch requires
      const std::int64_t k = uniform(rng, 1, std::min<std::int64_t>({3, h, w}));
      const std::int64_t s = uniform(rng, 1, k);
      const std::int64_t p = uniform(rng, 0, k / 2);
      if (out_size(h, k, s, p, 1) < 1 || out_size(w, k, s, p, 1) < 1) return;
      if (chance(rng, 0.5)) {
        add(std::make_unique<MaxPool2d>(k, s, p));
        describe << "MaxPool2d(" << k << "," << s << "," << p << ") ";
      } else {
        add(std::make_unique<AvgPool2d>(k, s, p));
        describe << "AvgPool2d(" << k << "," << s << "," << p << ") ";
      }
      shape = {c, out_size(h, k, s, p, 1), out_size(w, k, s, p, 1)};
      return;
    }
    case 3:
      add(std::make_unique<BatchNorm2d>(c));
      describe << "BatchNorm2d(" << c << ") ";
      return;
    case 4:
    case 5: {
      const Activation::Kind kind = any_activation(rng);
      add(std::make_unique<Activation>(kind, 0.1F));
      describe << Activation(kind).kind() << " ";
      return;
    }
    case 6:
      add(std::make_unique<Dropout>(0.3F));
      describe << "Dropout ";
      return;
    case 7:
      add(residual_block(rng, c, 0, describe));
      return;
    default: {  // a block with a projection shortcut (BasicBlock's downsample): new channels,
                // perhaps stride 2, in both branches
      const std::int64_t out = uniform(rng, 1, 4);
      const std::int64_t stride = uniform(rng, 1, 2);
      const std::int64_t k = chance(rng, 0.5) ? 3 : 1;
      auto block = std::make_unique<Residual>();
      describe << "Residual[ Conv2d(" << c << "," << out << ",k=" << k << ",s=" << stride
               << ",p=" << k / 2 << ") ";
      block->emplace<Conv2d>(c, out, k, stride, k / 2);
      const int n = static_cast<int>(uniform(rng, 0, 2));
      for (int j = 0; j < n; ++j) block->add(shape_keeping_layer(rng, out, describe));
      describe << "| shortcut Conv2d(" << c << "," << out << ",k=1,s=" << stride << ") ";
      block->emplace_shortcut<Conv2d>(c, out, 1, stride, 0, 1, chance(rng, 0.5));
      if (chance(rng, 0.5)) {
        block->emplace_shortcut<BatchNorm2d>(out);
        describe << "BatchNorm2d ";
      }
      describe << "] ";
      add(std::move(block));
      shape = {out, out_size(h, k, stride, k / 2, 1), out_size(w, k, stride, k / 2, 1)};
      return;
    }
  }
}

struct RandomModel {
  std::unique_ptr<Sequential> model;
  std::string architecture;
};

RandomModel random_model(std::uint64_t seed) {
  Rng rng(seed);
  Shape shape = {uniform(rng, 1, 3), uniform(rng, 3, 7), uniform(rng, 3, 7)};
  std::ostringstream describe;
  describe << "input [" << shape[0] << "," << shape[1] << "," << shape[2] << "]: ";
  auto model = std::make_unique<Sequential>(shape[0] * shape[1] * shape[2]);
  model->emplace<Unflatten>(1, shape);
  const int layers = static_cast<int>(uniform(rng, 1, 6));
  for (int i = 0; i < layers; ++i)
    add_image_layer(rng, shape, describe,
                    [&](std::unique_ptr<Layer> l) { model->add(std::move(l)); });
  if (chance(rng, 0.3)) {
    const Size2 out{uniform(rng, 1, shape[1]), uniform(rng, 1, shape[2])};
    model->emplace<AdaptiveAvgPool2d>(out);
    describe << "AdaptiveAvgPool2d(" << out.h << "," << out.w << ") ";
    shape = {shape[0], out.h, out.w};
  }
  model->emplace<Flatten>();
  std::int64_t features = shape[0] * shape[1] * shape[2];
  if (chance(rng, 0.5)) {  // a hidden layer of the classifier
    const std::int64_t hidden = uniform(rng, 2, 6);
    model->emplace<Linear>(features, hidden);
    describe << "Linear(" << features << "," << hidden << ") ";
    if (chance(rng, 0.4)) {
      model->emplace<BatchNorm1d>(hidden);
      describe << "BatchNorm1d ";
    }
    const Activation::Kind kind = any_activation(rng);
    model->emplace<Activation>(kind, 0.1F);
    describe << Activation(kind).kind() << " ";
    features = hidden;
  }
  const std::int64_t classes = uniform(rng, 1, 4);
  model->emplace<Linear>(features, classes, chance(rng, 0.8));
  describe << "Linear(" << features << "," << classes << ")";
  model->build(Device::cpu(), seed);
  // Weights as training leaves them, not as initialized: a zero bias behind zero padding puts
  // whole rows of a later ReLU exactly at its kink, where the derivative is a convention (0, as
  // PyTorch's) that no difference quotient sees.
  Arena& parameters = model->parameters();
  std::normal_distribution<float> noise(0.0F, 0.3F);
  for (const auto& tensor : parameters.layout().tensors()) {
    std::vector<float> values = parameters.tensor_to_host(tensor.name);
    for (float& v : values) v += noise(rng);
    parameters.tensor_from_host(tensor.name, values);
  }
  return {std::move(model), describe.str()};
}

// CUTRAIN_TEST_RANDOM_MODELS=N checks N models instead of 120. A longer search reports a few in
// 6,000 whose failure is the finite difference's, not the backward pass's (each checked by hand):
// a max pooling whose windows tie on a third of the coordinates, or a strided convolution that
// reads only padding, so a BatchNorm after it normalizes a constant (its input's gradient is 0,
// and float sums leave 1e-2 through 1/sqrt(eps)).
TEST(RandomModels, GradientsAreThoseOfTheForwardPass) {
  const char* count = std::getenv("CUTRAIN_TEST_RANDOM_MODELS");
  const int models = count != nullptr ? std::atoi(count) : 120;
  std::size_t checked = 0;
  double worst = 0;
  int retried = 0;
  for (int i = 0; i < models; ++i) {
    RandomModel m = random_model(1000 + static_cast<std::uint64_t>(i));
    const bool eval = i % 3 == 2;
    if (eval) {
      Sequential& model = *m.model;
      std::mt19937_64 gen(static_cast<std::uint64_t>(i));
      std::normal_distribution<float> normal(0.5F, 2.0F);  // statistics away from 0 and 1
      std::vector<float> x(static_cast<std::size_t>(8 * model.input_features()));
      for (int pass = 0; pass < 3; ++pass) {
        for (float& v : x) v = normal(gen);
        model.forward({x.data(), 8, model.input_features(), Device::cpu()});
      }
      model.eval();
    }
    SCOPED_TRACE("model " + std::to_string(i) + (eval ? " (eval)" : "") + ": " + m.architecture);
    // Batches of 3 and more: BatchNorm's statistics over one row leave no gradient to check.
    // A coordinate whose error is the step's - the curvature a float forward needs a large step
    // against, a max-pooling window changing hands within it - passes at a step 4 times
    // smaller; a wrong backward fails at both. atol 5e-3, not 1e-3: a bias before a BatchNorm
    // has the gradient 0 (the mean taken out), which float sums leave at up to 2e-3 where a
    // squashing chain made the rows nearly agree (1/sigma large), at any step.
    GradCheckOptions options{
        .batch = 3 + i % 3, .seed = static_cast<std::uint64_t>(i), .atol = 5e-3, .per_tensor = 6};
    GradCheckResult r = check_gradients(*m.model, options);
    if (!r.passed) {
      options.step /= 4;
      const GradCheckResult smaller = check_gradients(*m.model, options);
      EXPECT_TRUE(smaller.passed) << "step " << options.step * 4 << ": " << r.worst << "; step "
                                  << options.step << ": " << smaller.worst << "; " << smaller.kinks
                                  << " kinks of " << smaller.kinks + smaller.checked << "; "
                                  << testing::PrintToString(smaller.failures);
      r = smaller;
      ++retried;
    }
    checked += r.checked;
    worst = std::max(worst, r.max_error_ratio);
  }
  EXPECT_GT(checked, static_cast<std::size_t>(models) * 12);
  std::printf(
      "%d models (%d at the smaller step), %zu coordinates, worst error %.2f of the "
      "tolerance\n",
      models, retried, checked, worst);
}

}  // namespace
}  // namespace cutrain::nn
