// Note [Linear and ReLU in one GEMM]: ReLU's backward may read its output in place of its input
// (the same result for every float), so on the GPU a Linear followed by ReLU can be one cuBLASLt
// matmul whose pre-activation is never written; that model must train as the unfused one does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "kernels/nn/activation.cuh"
#include "nn_fixture.hpp"
#include "support/gpu.hpp"
#if CUTRAIN_WITH_CUDA
#include "cutrain/stream.hpp"
#include "src/cuda/handles.hpp"
#include "src/cuda/lt_matmul.hpp"
#include "src/nn/backend.hpp"
#endif

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::to_host;

TEST(LinearRelu, ReluBackwardFromTheOutputIsTheBackwardFromTheInput) {
  const float inf = std::numeric_limits<float>::infinity();
  const float special[] = {0.0F,  -0.0F, 1e-45F, -1e-45F, 1e-38F, -1e-38F,      1.0F,
                           -1.0F, 3e38F, -3e38F, inf,     -inf,   std::nanf("")};
  for (const float x : special) {
    const float y = rules::activation_forward(rules::Activation::kRelu, x, 0.0F);
    for (const float dy : {1.0F, -2.5F, 0.0F}) {
      const float from_x = rules::activation_backward(rules::Activation::kRelu, x, y, dy, 0.0F);
      const float from_y = rules::activation_backward(rules::Activation::kRelu, y, y, dy, 0.0F);
      EXPECT_EQ(std::signbit(from_x), std::signbit(from_y)) << "x " << x << " dy " << dy;
      EXPECT_EQ(from_x, from_y) << "x " << x << " dy " << dy;
    }
  }
}

#if CUTRAIN_WITH_CUDA
struct Result {
  std::vector<float> output, input_grad, grads;
};

// Linear -> ReLU -> Linear -> ReLU -> Linear, one forward and backward of a 37-row batch.
Result forward_backward(const char* cublaslt) {
  setenv("CUTRAIN_CUBLASLT", cublaslt, 1);
  Sequential m(20);
  m.emplace<Linear>(20, 64).emplace<Activation>(Activation::Kind::kRelu);
  m.emplace<Linear>(64, 32).emplace<Activation>(Activation::Kind::kRelu).emplace<Linear>(32, 10);
  m.build(Device::cuda(0), 9);
  unsetenv("CUTRAIN_CUBLASLT");
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> xs(37 * 20), dys(37 * 10);
  for (float& v : xs) v = normal(rng);
  for (float& v : dys) v = normal(rng);
  DeviceMatrix x(xs, 37, 20, Device::cuda(0)), dy(dys, 37, 10, Device::cuda(0));
  DeviceMatrix dx(37, 20, Device::cuda(0));
  Result r;
  r.output = to_host(m.forward(x.m));
  m.backward(dy.m, nullptr, &dx.m);
  r.input_grad = to_host(dx.m);
  r.grads = m.gradients().to_host();
  return r;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5 * (1.0 + std::fabs(want[i]))) << what << " element " << i;
}

// GEMM orders may differ between cuBLASLt's kernels and cublasSgemm's: agreement to rounding.
TEST(LinearReluGpu, FusedModelTrainsAsTheUnfusedOne) {
  CUTRAIN_REQUIRE_GPU();
  const Result fused = forward_backward("1"), unfused = forward_backward("0");
  expect_close(fused.output, unfused.output, "output");
  expect_close(fused.input_grad, unfused.input_grad, "input gradient");
  expect_close(fused.grads, unfused.grads, "parameter gradients");
}

// The fused call really runs fused for a Linear-shaped case: it counts, leaves `pre` alone,
// and its output is max(x W^T + b, 0) - the two-pass result to the GEMM's rounding.
TEST(LinearReluGpu, OneCallLeavesThePreActivationUnwritten) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  Stream stream(gpu);
  detail::CublasHandle cublas(0);
  cublas.set_stream(stream.native());
  detail::LtMatmul lt(0);
  ASSERT_TRUE(lt.enabled()) << "unset CUTRAIN_CUBLASLT to test the fused path";
  const backend::Exec e{gpu, stream.native(), cublas.get(), &lt};
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> xs(64 * 48), ws(40 * 48), bs(40);
  for (float& v : xs) v = normal(rng);
  for (float& v : ws) v = normal(rng);
  for (float& v : bs) v = normal(rng);
  const float sentinel = -12345.0F;
  DeviceMatrix x(xs, 64, 48, gpu), w(ws, 40, 48, gpu), b(bs, 1, 40, gpu);
  DeviceMatrix pre(std::vector<float>(64 * 40, sentinel), 64, 40, gpu), out(64, 40, gpu);
  const bool wrote_pre = backend::gemm_bias_relu(e, false, true, 64, 40, 48, x.m.data, 48, w.m.data,
                                                 48, pre.m.data, out.m.data, 40, b.m.data);
  stream.synchronize();
  EXPECT_FALSE(wrote_pre);
  EXPECT_EQ(lt.fused_calls(), 1);
  EXPECT_EQ(to_host(pre.m), std::vector<float>(64 * 40, sentinel));
  const std::vector<float> got = to_host(out.m);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 40; ++c) {
      double acc = bs[static_cast<std::size_t>(c)];
      for (int k = 0; k < 48; ++k)
        acc += static_cast<double>(xs[static_cast<std::size_t>(r * 48 + k)]) *
               ws[static_cast<std::size_t>(c * 48 + k)];
      ASSERT_NEAR(got[static_cast<std::size_t>(r * 40 + c)], std::max(acc, 0.0), 1e-4)
          << "row " << r << " column " << c;
    }
}
#endif

}  // namespace
}  // namespace cutrain::nn
