// Sequential: PyTorch's nn.Sequential naming and values end to end, default initialization,
// bad input, no allocation in the steady state, and Dropout.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cutrain/error.hpp"
#include "cutrain/init.hpp"
#include "cutrain/nn/conv.hpp"
#include "cutrain/optim.hpp"
#include "kernels/nn/activation.cuh"
#include "nn_fixture.hpp"
#include "src/rng/philox_host.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceLabels;
using testing::DeviceMatrix;
using testing::floats;
using testing::layer_goldens;
using testing::to_host;

Sequential golden_mlp(Device device) {
  Sequential m(6);
  m.emplace<Linear>(6, 8).emplace<Activation>(Activation::Kind::kRelu);
  m.emplace<Linear>(8, 5).emplace<Activation>(Activation::Kind::kTanh);
  m.emplace<Linear>(5, 3);
  m.build(device, 1);
  return m;
}

void check_mlp(Device device) {
  const auto& c = layer_goldens().at("sequential_mlp");
  Sequential m = golden_mlp(device);
  // The arena's names are exactly nn.Sequential's state_dict keys.
  std::vector<std::string> names;
  for (const auto& t : m.parameters().layout().tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight",
                                             "layers.2.bias", "layers.4.weight", "layers.4.bias"}));
  for (const auto& n : names)
    m.parameters().tensor_from_host(n, floats(c.at("param." + n.substr(7))));
  DeviceMatrix x(floats(c.at("x")), 7, 6, device), grad(7, 3, device);
  DeviceLabels labels(c.at("labels").get<std::vector<std::int32_t>>(), device);
  SoftmaxCrossEntropy loss;
  loss.compute(m.forward(x.m), labels.data(), &grad.m);
  m.backward(grad.m);
  EXPECT_NEAR(loss.value(), c.at("loss").get<double>(), 1e-5);
  for (const auto& n : names) {
    const auto want = floats(c.at("grad." + n.substr(7)));
    const auto got = m.gradients().tensor_to_host(n);
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-4 * std::fabs(want[i])) << n << "[" << i << "]";
  }
}

TEST(Sequential, MatchesPyTorchMlp) {
  check_mlp(Device::cpu());
}
TEST(SequentialGpu, MatchesPyTorchMlp) {
  CUTRAIN_REQUIRE_GPU();
  check_mlp(Device::cuda(0));
}

TEST(Sequential, DefaultInitFollowsTheActivation) {
  Sequential m(100);
  m.emplace<Linear>(100, 200).emplace<Activation>(Activation::Kind::kRelu);
  m.emplace<Linear>(200, 300).emplace<Activation>(Activation::Kind::kTanh);
  m.emplace<Linear>(300, 10);
  m.build(Device::cpu(), 11);
  auto bound = [&](const char* name) {
    const auto w = m.parameters().tensor_to_host(name);
    float b = 0;
    for (const float v : w) b = std::max(b, std::fabs(v));
    return b;
  };
  // He uniform bound sqrt(6 / fan_in); Xavier uniform gain * sqrt(6 / (fan_in + fan_out)).
  EXPECT_NEAR(bound("layers.0.weight"), std::sqrt(6.0 / 100), 0.01);
  EXPECT_NEAR(bound("layers.2.weight"), 5.0 / 3.0 * std::sqrt(6.0 / 500), 0.01);
  EXPECT_NEAR(bound("layers.4.weight"), std::sqrt(6.0 / 310), 0.01);
  for (const float b : m.parameters().tensor_to_host("layers.0.bias")) ASSERT_EQ(b, 0.0F);
  EXPECT_NE(m.summary().find("total parameters: 83510"), std::string::npos) << m.summary();
}

// Note [architecture in exports]: each layer as torch.nn builds it - class name and keyword
// arguments, floats as the shortest text of the same float - in order.
TEST(Sequential, DescribesItsModulesForPyTorch) {
  Sequential m(5);
  m.emplace<Linear>(5, 4, /*bias=*/false).emplace<BatchNorm1d>(4, 1e-3F, 0.25F);
  m.emplace<Activation>(Activation::Kind::kLeakyRelu, 0.2F).emplace<Dropout>(0.1F);
  m.emplace<Linear>(4, 2).emplace<Activation>(Activation::Kind::kGelu);
  const auto j = nlohmann::json::parse(m.torch_modules());
  const auto want = nlohmann::json::parse(R"([
    {"type": "Linear", "args": {"in_features": 5, "out_features": 4, "bias": false}},
    {"type": "BatchNorm1d", "args": {"num_features": 4, "eps": 0.001, "momentum": 0.25,
                                     "affine": true}},
    {"type": "LeakyReLU", "args": {"negative_slope": 0.2}},
    {"type": "Dropout", "args": {"p": 0.1}},
    {"type": "Linear", "args": {"in_features": 4, "out_features": 2, "bias": true}},
    {"type": "GELU", "args": {}}])");
  EXPECT_EQ(j, want) << j.dump();
  // 0.1 is written so that it reads back as the same float.
  EXPECT_EQ(static_cast<float>(j[3]["args"]["p"].get<double>()), 0.1F);
}

TEST(Sequential, RejectsBadInput) {
  Sequential empty(4);
  EXPECT_THROW(empty.build(Device::cpu(), 1), Error);
  Sequential wrong(4);
  wrong.emplace<Linear>(5, 3);
  try {
    wrong.build(Device::cpu(), 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expects 5 input features"), std::string::npos);
  }
  Sequential m = golden_mlp(Device::cpu());
  DeviceMatrix x(3, 7, Device::cpu());
  try {
    m.forward(x.m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expects 6 input features but the batch has 7"),
              std::string::npos)
        << e.what();
  }
  DeviceMatrix none(0, 6, Device::cpu());
  EXPECT_THROW(m.forward(none.m), Error);
  Matrix negative = x.m;  // a row count computed wrong: named as it is
  negative.rows = -1;
  negative.cols = 6;
  try {
    m.forward(negative);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a batch of -1 rows (at least 1)"), std::string::npos)
        << e.what();
  }
  DeviceMatrix dy(3, 3, Device::cpu());
  EXPECT_THROW(m.backward(dy.m), Error);                       // before forward
  EXPECT_THROW(m.add(std::make_unique<Linear>(3, 3)), Error);  // after build
  const std::vector<std::int32_t> labels = {0, 3, 1};
  try {
    SoftmaxCrossEntropy::check_labels(labels.data(), 3, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 at position 1 is outside [0, 3)"),
              std::string::npos);
  }
  EXPECT_THROW(Dropout(1.0F), Error);
  EXPECT_THROW(Linear(0, 3), Error);
  EXPECT_THROW(SoftmaxCrossEntropy(1.5F), Error);
  EXPECT_THROW(SoftmaxCrossEntropy(0.0F, {1.0F, -1.0F}), Error);
  SoftmaxCrossEntropy two_weights(0.0F, {1.0F, 2.0F});
  DeviceMatrix logits(std::vector<float>(9, 0.5F), 3, 3, Device::cpu());
  const std::vector<std::int32_t> fine = {0, 1, 2};
  try {
    two_weights.compute(logits.m, fine.data(), nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 class weights but the logits have 3 classes"),
              std::string::npos)
        << e.what();
  }
}

void check_no_steady_state_allocation(Device device) {
  Sequential m(32);
  m.emplace<Linear>(32, 64).emplace<BatchNorm1d>(64).emplace<Activation>(Activation::Kind::kRelu);
  m.emplace<Dropout>(0.2F).emplace<Linear>(64, 10);
  m.build(device, 3);
  optim::Adam opt(m.parameters(), {});
  DeviceMatrix x(std::vector<float>(16 * 32, 0.5F), 16, 32, device), grad(16, 10, device);
  DeviceLabels labels(std::vector<std::int32_t>(16, 1), device);
  SoftmaxCrossEntropy loss, weighted(0.1F, std::vector<float>(10, 2.0F));
  auto step = [&] {
    const Matrix& out = m.forward(x.m);
    loss.compute(out, labels.data(), &grad.m);
    weighted.compute(out, labels.data(), nullptr);  // its weights copied to the device once
    m.backward(grad.m);
    opt.step(m.parameters(), m.gradients());
  };
  step();
  const std::uint64_t before = detail::buffer_allocations();
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(detail::buffer_allocations(), before) << "a steady-state step allocated memory";
}

// Note [TF32 switch]: refused where it cannot be honoured - never silently ignored.
TEST(Sequential, PrecisionIsRefusedWhereItCannotBeHonoured) {
  Sequential unbuilt(6);
  unbuilt.emplace<Linear>(6, 3);
  EXPECT_THROW(unbuilt.set_precision(Precision::kFp32), Error);  // before build
  Sequential m = golden_mlp(Device::cpu());
  EXPECT_EQ(m.precision(), Precision::kFp32);
  const std::string tf32 = testing::error_of([&] { m.set_precision(Precision::kTf32); });
  EXPECT_NE(tf32.find("tf32"), std::string::npos) << tf32;
  EXPECT_NE(tf32.find("cpu"), std::string::npos) << tf32;
  EXPECT_EQ(m.precision(), Precision::kFp32);
  m.set_precision(Precision::kBf16);  // both backends (sequential_precision_test.cpp)
  EXPECT_EQ(m.precision(), Precision::kBf16);
  m.set_precision(Precision::kFp32);
}

// TF32 changes the GEMMs (inputs rounded to 10 mantissa bits: outputs differ from fp32 but stay
// within TF32's error), stays deterministic, and switching back gives strict fp32 bit for bit.
TEST(SequentialGpu, Tf32GemmsAreCloseDeterministicAndSwitchBack) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  auto model = [&] {
    Sequential m(512);
    m.emplace<Linear>(512, 256).emplace<Activation>(Activation::Kind::kRelu);
    m.emplace<Unflatten>(1, Shape{4, 8, 8}).emplace<Conv2d>(4, 8, 3, 1, 1);
    m.build(gpu, 7);
    return m;
  };
  std::vector<float> xs(64 * 512);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.11F * static_cast<float>(i));
  const DeviceMatrix x(xs, 64, 512, gpu);
  Sequential a = model();
  const std::vector<float> fp32 = to_host(a.forward(x.m));
  a.set_precision(Precision::kTf32);
  const std::vector<float> tf32 = to_host(a.forward(x.m));
  EXPECT_EQ(to_host(a.forward(x.m)), tf32);  // deterministic
  ASSERT_EQ(tf32.size(), fp32.size());
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(tf32[i] - fp32[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(fp32[i])));
  }
  EXPECT_GT(max_diff, 0.0) << "TF32 did not change the GEMMs";
  EXPECT_LT(max_diff, 1e-2 * max_abs) << "beyond TF32's rounding";
  a.set_precision(Precision::kFp32);
  EXPECT_EQ(to_host(a.forward(x.m)), fp32);
}

TEST(Sequential, SteadyStateStepAllocatesNothing) {
  check_no_steady_state_allocation(Device::cpu());
}
TEST(SequentialGpu, SteadyStateStepAllocatesNothing) {
  CUTRAIN_REQUIRE_GPU();
  check_no_steady_state_allocation(Device::cuda(0));
}

void check_dropout(Device device) {
  const float p = 0.3F;
  Sequential m(1000);
  m.emplace<Dropout>(p);
  m.build(device, 77);
  DeviceMatrix x(std::vector<float>(64 * 1000, 2.0F), 64, 1000, device);
  const auto y1 = to_host(m.forward(x.m));
  std::size_t kept = 0;
  for (const float v : y1) {
    ASSERT_TRUE(v == 0.0F || std::fabs(v - 2.0F / (1.0F - p)) < 1e-6F) << v;
    kept += v != 0.0F;
  }
  const double n = static_cast<double>(y1.size());
  EXPECT_NEAR(kept / n, 1 - p, 5 * std::sqrt(p * (1 - p) / n));
  const auto y2 = to_host(m.forward(x.m));
  EXPECT_NE(y1, y2) << "each forward pass draws a new mask";
  DeviceMatrix dy(std::vector<float>(64 * 1000, 1.0F), 64, 1000, device);
  DeviceMatrix dx(64, 1000, device);
  m.backward(dy.m, nullptr, &dx.m);
  const auto g = to_host(dx.m);
  for (std::size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i] != 0.0F, y2[i] != 0.0F) << i;
  m.eval();
  EXPECT_EQ(to_host(m.forward(x.m)), std::vector<float>(64 * 1000, 2.0F));
  // The same seed replays the same masks.
  Sequential again(1000);
  again.emplace<Dropout>(p);
  again.build(device, 77);
  EXPECT_EQ(to_host(again.forward(x.m)), y1);
}

// Note [forward count in device memory]: training pass k draws from stream position k x numel,
// k read from the device's copy of the count, which the pass advances there and
// set_training_forward_count writes; evaluation passes leave it alone.
void check_device_step(Device device) {
  const float p = 0.25F;
  const std::int64_t rows = 4, cols = 37;  // 148 numbers a pass: positions off the 4-blocks too
  Sequential m(cols);
  m.emplace<Dropout>(p);
  m.build(device, 5);
  const std::vector<float> xs(static_cast<std::size_t>(rows * cols), 3.0F);
  DeviceMatrix x(xs, rows, cols, device);
  auto want = [&](std::uint64_t k) {  // the mask of pass k, from cuRAND's host Philox
    std::vector<float> u(xs.size()), y(xs.size());
    detail::philox_uniform_host(init::tensor_seed(5, 0), k * xs.size(), u.data(), u.size());
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = rules::dropout_forward(u[i], xs[i], p);
    return y;
  };
  for (std::uint64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(to_host(m.forward(x.m)), want(k)) << "pass " << k;
    m.eval();
    m.forward(x.m);  // not counted
    m.train();
  }
  EXPECT_EQ(m.training_forward_count(), 3U);
  m.set_training_forward_count(7);
  EXPECT_EQ(to_host(m.forward(x.m)), want(7));
  m.set_training_forward_count(1);
  EXPECT_EQ(to_host(m.forward(x.m)), want(1));
  EXPECT_EQ(to_host(m.forward(x.m)), want(2));
  // A replayed pass advanced the device's count; the host's follows.
  m.count_replayed_forward();
  EXPECT_EQ(m.training_forward_count(), 4U);
}
TEST(Dropout, DrawsFromTheCountInDeviceMemory) {
  check_device_step(Device::cpu());
}
TEST(DropoutGpu, DrawsFromTheCountInDeviceMemory) {
  CUTRAIN_REQUIRE_GPU();
  check_device_step(Device::cuda(0));
}

// Note [dropout stream]: with set_training_rows(R) pass k draws from position k x R x cols
// whatever its batch - a process whose first batch is an epoch's shorter last one (a resume)
// draws the uninterrupted run's masks; unset, the stride is the largest batch seen so far.
void check_training_rows(Device device) {
  const float p = 0.25F;
  const std::int64_t cols = 37, full = 4, last = 2;
  auto model = [&](std::int64_t rows) {
    Sequential m(cols);
    m.emplace<Dropout>(p);
    m.set_training_rows(rows);
    m.build(device, 5);
    return m;
  };
  const std::vector<float> xs(static_cast<std::size_t>(last * cols), 3.0F);
  DeviceMatrix x(xs, last, cols, device);
  auto want = [&](std::uint64_t offset) {  // a 2-row pass's mask from `offset`, cuRAND's Philox
    std::vector<float> u(xs.size()), y(xs.size());
    detail::philox_uniform_host(init::tensor_seed(5, 0), offset, u.data(), u.size());
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = rules::dropout_forward(u[i], xs[i], p);
    return y;
  };
  Sequential set = model(full);
  set.set_training_forward_count(7);  // a resumed run: 7 passes of 4 rows before this one
  EXPECT_EQ(to_host(set.forward(x.m)), want(7 * full * cols));
  Sequential unset = model(0);
  unset.set_training_forward_count(7);
  EXPECT_EQ(to_host(unset.forward(x.m)), want(7 * last * cols));
  // A training batch larger than the model is set for is refused; evaluation is not bound.
  const std::vector<float> more(static_cast<std::size_t>((full + 1) * cols), 1.0F);
  DeviceMatrix wide(more, full + 1, cols, device);
  const std::string e = testing::error_of([&] { set.forward(wide.m); });
  EXPECT_NE(e.find("a training batch of 5 rows, more than the model is set for"), std::string::npos)
      << e;
  set.eval();
  EXPECT_EQ(to_host(set.forward(wide.m)), more);
  EXPECT_THROW(set.set_training_rows(-1), Error);
}
TEST(Dropout, TrainingRowsFixTheStrideOfItsStream) {
  check_training_rows(Device::cpu());
}
TEST(DropoutGpu, TrainingRowsFixTheStrideOfItsStream) {
  CUTRAIN_REQUIRE_GPU();
  check_training_rows(Device::cuda(0));
}

// Note [replica rows]: a model set to rank r of W draws, pass after pass, the masks one model
// draws for rows r, r + W, ... of the combined batch - a later, shorter batch too, whose passes
// keep the first batch's stride.
void check_replica_rows(Device device) {
  constexpr std::int64_t kWorld = 3, kRows = 4, kCols = 37;  // 37: rows off the 4-number blocks
  auto dropout = [&](int rank, int world) {
    Sequential m(kCols);
    m.emplace<Dropout>(0.5F);
    m.set_replica(rank, world);  // before build
    m.build(device, 9);
    return m;
  };
  Sequential one = dropout(0, 1);
  std::vector<Sequential> ranks;
  ranks.reserve(kWorld);
  for (int r = 0; r < kWorld; ++r) ranks.push_back(dropout(r, kWorld));
  ranks[2].set_replica(2, kWorld);  // and after: the same
  for (const std::int64_t rows : {kRows, kRows, std::int64_t{2}, kRows}) {
    const std::vector<float> xs(static_cast<std::size_t>(kWorld * rows * kCols), 1.0F);
    const std::vector<float> all =
        to_host(one.forward(DeviceMatrix(xs, kWorld * rows, kCols, device).m));
    std::size_t dropped = 0;
    for (int r = 0; r < kWorld; ++r) {
      const std::vector<float> part(xs.begin(), xs.begin() + rows * kCols);
      const std::vector<float> got =
          to_host(ranks[r].forward(DeviceMatrix(part, rows, kCols, device).m));
      for (std::int64_t j = 0; j < rows; ++j)
        for (std::int64_t c = 0; c < kCols; ++c) {
          const float want = all[static_cast<std::size_t>((j * kWorld + r) * kCols + c)];
          ASSERT_EQ(got[static_cast<std::size_t>(j * kCols + c)], want)
              << "rank " << r << " row " << j << " column " << c << " of a batch of " << rows;
          dropped += want == 0.0F ? 1 : 0;
        }
    }
    EXPECT_GT(dropped, xs.size() / 4);  // p = 0.5: about half
    EXPECT_LT(dropped, 3 * xs.size() / 4);
  }
  EXPECT_EQ(ranks[1].replica().rank, 1);
  EXPECT_EQ(ranks[1].replica().world, kWorld);
  EXPECT_THROW(ranks[1].set_replica(3, 3), Error);
  EXPECT_THROW(ranks[1].set_replica(0, 0), Error);
}
TEST(Dropout, AReplicaDrawsItsRowsOfTheCombinedBatch) {
  check_replica_rows(Device::cpu());
}
TEST(DropoutGpu, AReplicaDrawsItsRowsOfTheCombinedBatch) {
  CUTRAIN_REQUIRE_GPU();
  check_replica_rows(Device::cuda(0));
}

TEST(Dropout, MasksAreInvertedSeededAndOffInEval) {
  check_dropout(Device::cpu());
}
TEST(DropoutGpu, MasksAreInvertedSeededAndOffInEval) {
  CUTRAIN_REQUIRE_GPU();
  check_dropout(Device::cuda(0));
}

}  // namespace
}  // namespace cutrain::nn
