// Note [convolutions on cuDNN] (src/nn/conv_cudnn.hpp) and Note [cuDNN loaded at run time]
// (src/cuda/cudnn.hpp). Without a GPU: the library loads or says why, every convolution of the
// default CNN (and a strided, dilated, rectangular one) has deterministic, direct, precompiled
// engines on offer in each operation - the descriptors, the operation graph and the heuristics
// need no device (the configurations do) -, and a request cuDNN refuses is reported, naming the
// descriptor. On a GPU: a Conv2d runs on cuDNN, within fp32 accumulation order of the lowering,
// with the same bits on every run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "nn/nn_fixture.hpp"
#include "src/cuda/cudnn.hpp"
#include "src/nn/conv_cudnn.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::to_host;

TEST(Cudnn, LoadsTheGraphApiOrSaysWhy) {
  if (detail::cudnn::version() == 0) {
    EXPECT_FALSE(detail::cudnn::unavailable_reason().empty());
    GTEST_SKIP() << "cuDNN not used here: " << detail::cudnn::unavailable_reason();
  }
  EXPECT_EQ(detail::cudnn::version() / 10000, 9U);
  EXPECT_EQ(detail::cudnn::unavailable_reason(), "");
}

TEST(CudnnConv, TheSwitchTakesZeroOrOneAndNamesAnythingElse) {
  unsetenv("CUTRAIN_CUDNN");
  EXPECT_TRUE(cudnn_conv::enabled_by_environment());
  setenv("CUTRAIN_CUDNN", "1", 1);
  EXPECT_TRUE(cudnn_conv::enabled_by_environment());
  setenv("CUTRAIN_CUDNN", "0", 1);
  EXPECT_FALSE(cudnn_conv::enabled_by_environment());
  setenv("CUTRAIN_CUDNN", "off", 1);
  try {
    cudnn_conv::enabled_by_environment();
    ADD_FAILURE() << "CUTRAIN_CUDNN=off was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUTRAIN_CUDNN=off is not 0"), std::string::npos)
        << e.what();
  }
  unsetenv("CUTRAIN_CUDNN");
}

struct Geometry {
  const char* name;
  rules::ConvGeometry g;
};

std::vector<Geometry> geometries() {
  return {{"conv1 1-32 28x28", rules::conv_geometry(1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1)},
          {"conv2 32-32 28x28", rules::conv_geometry(32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1)},
          {"conv3 32-64 14x14", rules::conv_geometry(32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1)},
          {"conv4 64-64 14x14", rules::conv_geometry(64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1)},
          {"res2 64-64 7x7", rules::conv_geometry(64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1)},
          {"3-8 (3, 5) stride (2, 1) pad (1, 2) dilation (1, 2) on 11x9",
           rules::conv_geometry(3, 11, 9, 8, 3, 5, 2, 1, 1, 2, 1, 2)},
          // grouped (ResNeXt-like) and depthwise with a channel multiplier of 2 (Note [grouped
          // convolution]; without a multiplier it lowers: the test below)
          {"g8 64-64 14x14", rules::conv_geometry(64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 8)},
          {"dw 32-64 stride 2 on 28x28",
           rules::conv_geometry(32, 28, 28, 64, 3, 3, 2, 2, 1, 1, 1, 1, 32)}};
}

// Every operation of every geometry: the descriptors and the graph are accepted and heuristics
// rank engines for it; on a GPU (which hands the configurations out) some pass the filter.
void check_candidates(bool gpu) {
  for (const Geometry& geo : geometries())
    for (const cudnn_conv::Op op :
         {cudnn_conv::Op::kForward, cudnn_conv::Op::kBackwardData, cudnn_conv::Op::kBackwardFilter})
      for (const bool tf32 : {false, true}) {
        const cudnn_conv::Request r{geo.g, 128, op, 16, tf32};
        const cudnn_conv::Candidates c = cudnn_conv::candidates(r);
        const std::string what = std::string(geo.name) + ", op " +
                                 std::to_string(static_cast<int>(op)) + ", tf32 " +
                                 std::to_string(tf32) + ": " + c.why;
        EXPECT_GT(c.listed, 0) << what;
        EXPECT_GE(c.offered, c.kept) << what;
        // The convolutions of groups 1 must have an engine on a GPU; a grouped one lowers where
        // cuDNN has none that passes the filter (said, not failed: the layer's result holds).
        if (gpu && geo.g.groups == 1) {
          EXPECT_GT(c.kept, 0) << what;
        } else if (gpu && c.kept == 0) {
          std::cout << "note: " << what << "\n";
        }
      }
}
TEST(CudnnConv, EveryConvolutionIsAcceptedAndRanked) {
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  check_candidates(false);
}
TEST(CudnnConvGpu, DeterministicDirectEnginesAreOfferedForEveryConvolution) {
  CUTRAIN_REQUIRE_GPU();
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  check_candidates(true);
}

// Note [convolutions on cuDNN]: cuDNN's heuristics are never asked about a convolution of one
// input and one output channel per group (they raise SIGFPE on its forward): candidates() and a
// layer's plans say why and lower it. Before the guard this test died of the signal.
TEST(CudnnConv, OneChannelPerGroupIsLoweredWithoutAskingCudnn) {
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  for (const rules::ConvGeometry& g :
       {rules::conv_geometry(1, 14, 14, 1, 3, 3, 1, 1, 1, 1, 1, 1),           // 1 -> 1
        rules::conv_geometry(1, 14, 14, 1, 1, 1, 1, 1, 0, 0, 1, 1),           // 1x1
        rules::conv_geometry(64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 64)}) {  // depthwise
    EXPECT_NE(cudnn_conv::refusal(g), "");
    for (const cudnn_conv::Op op : {cudnn_conv::Op::kForward, cudnn_conv::Op::kBackwardData,
                                    cudnn_conv::Op::kBackwardFilter}) {
      const cudnn_conv::Candidates c = cudnn_conv::candidates({g, 128, op, 16, false});
      EXPECT_EQ(c.listed, 0);
      EXPECT_EQ(c.kept, 0);
      EXPECT_NE(c.why.find("one input and one output channel per group"), std::string::npos)
          << c.why;
    }
  }
  // A channel multiplier, or a second input channel, is cuDNN's again.
  EXPECT_EQ(cudnn_conv::refusal(rules::conv_geometry(32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 32)),
            "");
  EXPECT_EQ(cudnn_conv::refusal(rules::conv_geometry(2, 14, 14, 1, 3, 3, 1, 1, 1, 1, 1, 1)), "");
}

// cuDNN's heuristics over 300 seeded random geometries - kernels 1-7, strides 1-3, dilation,
// padding, odd sizes, groups, batches 1-128, each operation -: every one is ranked, or refused
// by refusal() before cuDNN is asked; none kills the process (a probe of this kind found the
// SIGFPE above, for 1 -> 1 convolutions at strides 1 to 3).
TEST(CudnnConv, RandomGeometriesAreRankedOrRefusedAndNoneKillsTheProcess) {
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  std::mt19937 rng(20261208);
  auto pick = [&](std::initializer_list<std::int64_t> values) {
    return values.begin()[std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng)];
  };
  auto upto = [&](std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(0, hi)(rng);
  };
  int refused = 0;
  for (int tried = 0; tried < 300;) {
    const std::int64_t groups = pick({1, 1, 1, 2, 4, 8});
    const std::int64_t c = groups * pick({1, 2, 3, 4, 8, 16, 32});
    const std::int64_t co = groups * pick({1, 2, 3, 4, 8, 16, 32});
    const std::int64_t kh = pick({1, 2, 3, 5, 7}), kw = pick({1, 2, 3, 5, 7});
    const std::int64_t dh = pick({1, 1, 2}), dw = pick({1, 1, 2});
    const std::int64_t sh = pick({1, 1, 2, 3}), sw = pick({1, 1, 2, 3});
    const std::int64_t h = pick({1, 2, 3, 5, 7, 9, 14, 28, 31}),
                       w = pick({1, 2, 3, 5, 7, 9, 14, 28, 31});
    const rules::ConvGeometry g = rules::conv_geometry(
        c, h, w, co, kh, kw, sh, sw, upto((kh - 1) * dh), upto((kw - 1) * dw), dh, dw, groups);
    if (g.ho <= 0 || g.wo <= 0) continue;
    ++tried;
    const auto op = static_cast<cudnn_conv::Op>(upto(2));
    const cudnn_conv::Candidates r =
        cudnn_conv::candidates({g, pick({1, 2, 3, 16, 128}), op, 16, upto(1) == 1});
    const std::string what = std::to_string(c) + "->" + std::to_string(co) + " groups " +
                             std::to_string(groups) + " kernel " + std::to_string(kh) + "x" +
                             std::to_string(kw) + " on " + std::to_string(h) + "x" +
                             std::to_string(w) + ": " + r.why;
    if (c == groups && co == groups) {  // one input and one output channel per group
      ++refused;
      EXPECT_EQ(r.listed, 0) << what;
      EXPECT_EQ(r.why, cudnn_conv::refusal(g)) << what;
    } else {
      EXPECT_GT(r.listed, 0) << what;
    }
  }
  EXPECT_GT(refused, 0);  // the draw reaches the refused shape
}

TEST(CudnnConv, ARequestCudnnRefusesIsReportedNotRun) {
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  rules::ConvGeometry g = rules::conv_geometry(32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1);
  g.ho += 1;  // an output that does not fit the convolution
  const cudnn_conv::Candidates c = cudnn_conv::candidates({g, 16, cudnn_conv::Op::kForward, 16});
  EXPECT_EQ(c.kept, 0);
  EXPECT_NE(c.why.find("the operation"), std::string::npos) << c.why;
  EXPECT_NE(c.why.find("CUDNN_STATUS"), std::string::npos) << c.why;
}

// One Conv2d (with bias) forward and backward on `device`; CUTRAIN_CUDNN as given while the
// model first convolves.
struct ConvRun {
  std::vector<float> y, dx, dw, db;
  std::string algorithm;
};
ConvRun conv_run(Device device, const char* cudnn_env, std::int64_t out = 8,
                 std::int64_t groups = 1) {
  if (cudnn_env != nullptr)
    setenv("CUTRAIN_CUDNN", cudnn_env, 1);
  else
    unsetenv("CUTRAIN_CUDNN");
  const std::int64_t batch = 6, c = 4, hw = 9;
  Sequential m(c * hw * hw);
  m.emplace<Unflatten>(1, Shape{c, hw, hw});
  m.emplace<Conv2d>(c, out, Size2(3, 2), Size2(2, 1), Size2(1, 1), Size2(1, 1), true, groups);
  m.build(device, 5);
  std::vector<float> xs(static_cast<std::size_t>(batch * c * hw * hw));
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.31F * static_cast<float>(i));
  DeviceMatrix x(xs, batch, c * hw * hw, device);
  const Matrix& y = m.forward(x.m);
  std::vector<float> dys(y.size());
  for (std::size_t i = 0; i < dys.size(); ++i) dys[i] = std::cos(0.17F * static_cast<float>(i));
  DeviceMatrix dy(dys, y.rows, y.cols, device), dx(batch, c * hw * hw, device);
  ConvRun r;
  r.y = to_host(y);
  m.backward(dy.m, nullptr, &dx.m);
  r.dx = to_host(dx.m);
  r.dw = m.gradients().tensor_to_host("layers.1.weight");
  r.db = m.gradients().tensor_to_host("layers.1.bias");
  r.algorithm = static_cast<Conv2d&>(m.layer(1)).gpu_algorithm();
  unsetenv("CUTRAIN_CUDNN");
  return r;
}

void expect_near(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << what << " " << i;
}

// The convolution of conv_run (`out` channels, `groups`) twice on cuDNN, lowered and on the CPU:
// cuDNN ran it, with the same bits both times (deterministic engines), within accumulation order
// of the other two.
void expect_cudnn_agrees(std::int64_t out, std::int64_t groups) {
  SCOPED_TRACE("groups " + std::to_string(groups));
  const ConvRun a = conv_run(Device::cuda(0), nullptr, out, groups);
  const ConvRun b = conv_run(Device::cuda(0), nullptr, out, groups);
  const ConvRun lowered = conv_run(Device::cuda(0), "0", out, groups);
  const ConvRun cpu = conv_run(Device::cpu(), nullptr, out, groups);
  if (groups == 1) {
    EXPECT_EQ(a.algorithm.rfind("cuDNN 9", 0), 0U) << a.algorithm;
  } else if (a.algorithm.rfind("cuDNN 9", 0) != 0) {  // no engine passes the filter: lowered
    EXPECT_EQ(a.algorithm.rfind("lowering (cuDNN, ", 0), 0U) << a.algorithm;
    std::cout << "note: groups " << groups << ": " << a.algorithm << "\n";
  }
  EXPECT_EQ(lowered.algorithm, "lowering (CUTRAIN_CUDNN=0)");
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.dx, b.dx);
  EXPECT_EQ(a.dw, b.dw);
  for (const ConvRun* other : {&lowered, &cpu}) {
    expect_near(a.y, other->y, "y");
    expect_near(a.dx, other->dx, "dx");
    expect_near(a.dw, other->dw, "dw");
    expect_near(a.db, other->db, "db");
  }
}

TEST(CudnnConvGpu, MatchesTheLoweringAndRepeatsItsBits) {
  CUTRAIN_REQUIRE_GPU();
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  expect_cudnn_agrees(8, 1);
}

// Note [grouped convolution] on cuDNN: two groups and a depthwise convolution with a channel
// multiplier run on cuDNN like any other (or lower, saying so, where cuDNN offers no engine that
// passes the filter); a depthwise one without a multiplier lowers, saying why.
TEST(CudnnConvGpu, GroupedConvolutionsMatchTheLoweringAndRepeatTheirBits) {
  CUTRAIN_REQUIRE_GPU();
  if (detail::cudnn::version() == 0) GTEST_SKIP() << detail::cudnn::unavailable_reason();
  expect_cudnn_agrees(8, 2);
  expect_cudnn_agrees(8, 4);
  const ConvRun depthwise = conv_run(Device::cuda(0), nullptr, 4, 4);
  const ConvRun cpu = conv_run(Device::cpu(), nullptr, 4, 4);
  EXPECT_NE(depthwise.algorithm.find("one input and one output channel per group"),
            std::string::npos)
      << depthwise.algorithm;
  expect_near(depthwise.y, cpu.y, "y");
  expect_near(depthwise.dw, cpu.dw, "dw");
}

}  // namespace
}  // namespace cutrain::nn
