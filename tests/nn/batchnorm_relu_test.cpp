// Note [BatchNorm2d and ReLU in one pass]: a BatchNorm2d followed by a ReLU runs as one layer each
// way; the model must compute what the two layers compute one by one. The reference keeps them
// apart with a Dropout(0) between them (y = x * 1 exactly, dx = dy * 1), which stops the fusion.
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "nn_fixture.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::all_tensors;
using testing::DeviceMatrix;
using testing::to_host;

const Shape kImage{3, 6, 5};

// BN -> ReLU at the input, after a convolution, and last (the ReLU the final layer); `apart`
// puts a Dropout(0) between each BatchNorm2d and its ReLU.
Sequential model(Device device, bool apart) {
  Sequential m(numel(kImage));
  m.emplace<Unflatten>(1, kImage);
  auto bn_relu = [&](std::int64_t channels) {
    m.emplace<BatchNorm2d>(channels);
    if (apart) m.emplace<Dropout>(0.0F);
    m.emplace<Activation>(Activation::Kind::kRelu);
  };
  bn_relu(3);
  m.emplace<Conv2d>(3, 4, 3, 1, 1);
  bn_relu(4);
  m.emplace<Conv2d>(4, 2, 3, 1, 1);
  // The same pair inside a residual block's body.
  auto block = std::make_unique<Residual>();
  block->emplace<BatchNorm2d>(2);
  if (apart) block->emplace<Dropout>(0.0F);
  block->emplace<Activation>(Activation::Kind::kRelu).emplace<Conv2d>(2, 2, 3, 1, 1);
  m.add(std::move(block));
  bn_relu(2);
  m.emplace<Flatten>();
  m.build(device, 5);
  return m;
}

// Every tensor of `from` into `to`, in order (the Dropouts hold none, so only the names differ).
void copy_tensors(Arena& from, Arena& to) {
  const auto& a = from.layout().tensors();
  const auto& b = to.layout().tensors();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    to.tensor_from_host(b[i].name, from.tensor_to_host(a[i].name));
}

struct Run {
  std::vector<float> y, dx, eval_y;
  std::vector<std::vector<float>> grads, buffers;
};

Run run(Sequential& m, Precision precision) {
  m.set_precision(precision);
  const std::int64_t batch = 7, f = numel(kImage);
  std::mt19937_64 gen(11);
  std::normal_distribution<float> normal;
  std::vector<float> xs(static_cast<std::size_t>(batch * f));
  std::vector<float> dys(static_cast<std::size_t>(batch * m.output_features()));
  for (float& v : xs) v = normal(gen);
  for (float& v : dys) v = normal(gen);
  const Device d = m.device();
  DeviceMatrix x(xs, batch, f, d), dy(dys, batch, m.output_features(), d), dx(batch, f, d);
  Run r;
  r.y = to_host(m.forward(x.m));
  m.backward(dy.m, nullptr, &dx.m);
  r.dx = to_host(dx.m);
  r.grads = all_tensors(m.gradients());
  r.buffers = all_tensors(m.buffers());
  m.eval();
  r.eval_y = to_host(m.forward(x.m));
  return r;
}

void expect_same_bits(Device device) {
  for (const Precision p : {Precision::kFp32, Precision::kBf16}) {
    Sequential fused = model(device, false), apart = model(device, true);
    copy_tensors(fused.parameters(), apart.parameters());
    copy_tensors(fused.buffers(), apart.buffers());
    const Run a = run(fused, p), b = run(apart, p);
    const std::string what = p == Precision::kFp32 ? "fp32" : "bf16";
    EXPECT_EQ(a.y, b.y) << what;
    EXPECT_EQ(a.dx, b.dx) << what;
    EXPECT_EQ(a.grads, b.grads) << what;
    EXPECT_EQ(a.buffers, b.buffers) << what;
    EXPECT_EQ(a.eval_y, b.eval_y) << what;
    // Not a vacuous comparison: the ReLUs cut, and every gradient moved.
    std::size_t zeros = 0;
    for (const float v : a.y) zeros += v == 0.0F ? 1 : 0;
    EXPECT_GT(zeros, a.y.size() / 5) << what;
    for (const auto& g : a.grads) {
      std::size_t nonzero = 0;
      for (const float v : g) nonzero += v != 0.0F ? 1 : 0;
      EXPECT_GT(nonzero, 0U) << what;
    }
  }
}

TEST(BatchNormRelu, OnePassEachWayGivesTheTwoLayersBits) {
  expect_same_bits(Device::cpu());
}

TEST(BatchNormReluGpu, OnePassEachWayGivesTheTwoLayersBits) {
  CUTRAIN_REQUIRE_GPU();
  expect_same_bits(Device::cuda(0));
}

}  // namespace
}  // namespace cutrain::nn
