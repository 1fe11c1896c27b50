// Note [grid-stride everywhere] on a GPU: BatchNorm1d over more columns, and softmax
// cross-entropy over more rows, than one capped grid of 65 535 x 256 threads reaches - the items
// past it are computed, not skipped. Each case compares against the formula for its inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cutrain/nn.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

constexpr std::int64_t kBeyondOneGrid = std::int64_t{65535} * 256 + 1000;

TEST(LaunchShapeGpu, BatchNormBeyondOneGridOfColumns) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const std::int64_t cols = kBeyondOneGrid;
  Sequential model(cols);
  model.emplace<BatchNorm1d>(cols);
  model.build(gpu, /*seed=*/0);
  // Two rows, 0 and 2 in every column: mean 1, biased variance 1, y = -+1 / sqrt(1 + eps).
  std::vector<float> x(static_cast<std::size_t>(2 * cols), 0.0F);
  for (std::int64_t c = 0; c < cols; ++c) x[static_cast<std::size_t>(cols + c)] = 2.0F;
  Buffer xd(x.size() * sizeof(float), gpu);
  copy_bytes(xd.data(), gpu, x.data(), Device::cpu(), x.size() * sizeof(float));
  const Matrix& y = model.forward(Matrix{xd.as<float>(), 2, cols, gpu});
  std::vector<float> out(x.size());
  copy_bytes(out.data(), Device::cpu(), y.data, gpu, out.size() * sizeof(float));
  const float want = 1.0F / std::sqrt(1.0F + 1e-5F);
  for (const std::int64_t c : {std::int64_t{0}, cols - 1000, cols - 1}) {
    EXPECT_NEAR(out[static_cast<std::size_t>(c)], -want, 1e-6F) << "column " << c;
    EXPECT_NEAR(out[static_cast<std::size_t>(cols + c)], want, 1e-6F) << "column " << c;
  }
}

TEST(LaunchShapeGpu, CrossEntropyBeyondOneGridOfRows) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const std::int64_t rows = kBeyondOneGrid;
  // Equal logits over 2 classes: every row's loss is ln 2, and so is the mean; the gradient of
  // the last row is (1/2 - [label]) / rows.
  Buffer logits(static_cast<std::size_t>(rows) * 2 * sizeof(float), gpu);
  logits.zero();
  std::vector<std::int32_t> labels(static_cast<std::size_t>(rows), 1);
  Buffer labels_d(labels.size() * sizeof(std::int32_t), gpu);
  copy_bytes(labels_d.data(), gpu, labels.data(), Device::cpu(), labels_d.bytes());
  Buffer grad(logits.bytes(), gpu);
  Matrix g{grad.as<float>(), rows, 2, gpu};
  SoftmaxCrossEntropy loss;
  loss.compute(Matrix{logits.as<float>(), rows, 2, gpu}, labels_d.as<std::int32_t>(), &g);
  EXPECT_NEAR(loss.value(), std::log(2.0F), 1e-6F);
  float last[2] = {0, 0};
  copy_bytes(last, Device::cpu(), grad.as<float>() + 2 * (rows - 1), gpu, sizeof(last));
  EXPECT_FLOAT_EQ(last[0], 0.5F / static_cast<float>(rows));
  EXPECT_FLOAT_EQ(last[1], -0.5F / static_cast<float>(rows));
}

}  // namespace
}  // namespace cutrain::nn
