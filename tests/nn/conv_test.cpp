// The convolutional layers against PyTorch float64 goldens (make_conv_goldens.py), finite
// differences, shape errors, and the GPU against the CPU.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "cutrain/ops.hpp"
#include "kernels/nn/conv.cuh"
#include "kernels/nn/pool.cuh"
#include "nn/nn_fixture.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::floats;
using testing::to_host;

const nlohmann::json& conv_goldens() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/nn/golden/conv.json");
    return nlohmann::json::parse(in);
  }();
  return j.at("cases");
}

Size2 size2(const nlohmann::json& a) {
  return {a.at(0).get<std::int64_t>(), a.at(1).get<std::int64_t>()};
}

// The layer a golden case describes, built from its torch arguments (independently of
// train::load_model, which has its own test).
std::unique_ptr<Layer> layer_of(const nlohmann::json& c) {
  const std::string type = c.at("type");
  const nlohmann::json& a = c.at("args");
  if (type == "Conv2d")
    return std::make_unique<Conv2d>(a.at("in_channels"), a.at("out_channels"),
                                    size2(a.at("kernel_size")), size2(a.at("stride")),
                                    size2(a.at("padding")), size2(a.at("dilation")),
                                    a.at("bias").get<bool>(), a.value("groups", std::int64_t{1}));
  if (type == "MaxPool2d")
    return std::make_unique<MaxPool2d>(size2(a.at("kernel_size")), size2(a.at("stride")),
                                       size2(a.at("padding")));
  if (type == "AvgPool2d")
    return std::make_unique<AvgPool2d>(size2(a.at("kernel_size")), size2(a.at("stride")),
                                       size2(a.at("padding")));
  if (type == "AdaptiveAvgPool2d")
    return std::make_unique<AdaptiveAvgPool2d>(size2(a.at("output_size")));
  if (type == "BatchNorm2d")
    return std::make_unique<BatchNorm2d>(a.at("num_features"), a.at("eps").get<float>(),
                                         a.at("momentum").get<float>(), a.at("affine").get<bool>());
  ADD_FAILURE() << "unknown module " << type;
  return nullptr;
}

std::string suffix(const std::string& name) {
  return name.substr(name.rfind('.') + 1);
}

// |got - want| <= tol * max(1, max |want|): the references are float64, so this bounds cutrain's
// float32 rounding relative to the tensor's scale.
void expect_close(const std::vector<float>& got, const nlohmann::json& want_json, double tol,
                  const std::string& what) {
  const std::vector<double> want = want_json.get<std::vector<double>>();
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (const double v : want) scale = std::max(scale, std::fabs(v));
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << " [" << i << "]";
}

// Unflatten(1, {C, H, W}) then the case's layer: the loader's flat rows as images.
Sequential model_of(const nlohmann::json& c, Device device) {
  const std::vector<std::int64_t> xs = c.at("x_shape");
  Sequential m(xs[1] * xs[2] * xs[3]);
  m.emplace<Unflatten>(1, Shape{xs[1], xs[2], xs[3]});
  m.add(layer_of(c));
  m.build(device, 1);
  for (const auto& t : m.parameters().layout().tensors())
    m.parameters().tensor_from_host(t.name, floats(c.at("param." + suffix(t.name))));
  for (const auto& t : m.buffers().layout().tensors())
    m.buffers().tensor_from_host(t.name, floats(c.at("buffer_in." + suffix(t.name))));
  m.train(c.at("train").get<bool>());
  return m;
}

struct LayerRun {
  std::vector<float> y, dx;
  std::vector<std::vector<float>> grads, buffers;
};

LayerRun run(const nlohmann::json& c, Device device) {
  Sequential m = model_of(c, device);
  const std::vector<std::int64_t> xs = c.at("x_shape");
  const std::int64_t features = xs[1] * xs[2] * xs[3];
  DeviceMatrix x(floats(c.at("x")), xs[0], features, device);
  LayerRun r;
  const Matrix& y = m.forward(x.m);
  r.y = to_host(y);
  if (m.training()) {
    DeviceMatrix dy(floats(c.at("dy")), y.rows, y.cols, device);
    DeviceMatrix dx(xs[0], features, device);
    m.backward(dy.m, nullptr, &dx.m);
    r.dx = to_host(dx.m);
    r.grads = testing::all_tensors(m.gradients());
  }
  r.buffers = testing::all_tensors(m.buffers());
  return r;
}

void check_golden(const std::string& name, const nlohmann::json& c, Device device) {
  SCOPED_TRACE(name);
  const LayerRun r = run(c, device);
  expect_close(r.y, c.at("y"), 2e-6, "y");
  if (!r.dx.empty()) expect_close(r.dx, c.at("dx"), 2e-6, "dx");
  Sequential layout = model_of(c, Device::cpu());
  std::size_t k = 0;
  for (const auto& t : layout.gradients().layout().tensors())
    if (!r.grads.empty()) expect_close(r.grads[k++], c.at("grad." + suffix(t.name)), 1e-5, t.name);
  k = 0;
  for (const auto& t : layout.buffers().layout().tensors())
    expect_close(r.buffers[k++], c.at("buffer." + suffix(t.name)), 2e-6, t.name);
}

TEST(Conv, EveryGoldenMatchesPyTorchOnTheCpu) {
  int n = 0;
  for (const auto& [name, c] : conv_goldens().items()) {
    check_golden(name, c, Device::cpu());
    ++n;
  }
  EXPECT_GE(n, 30);
}

TEST(ConvGpu, EveryGoldenMatchesPyTorchAndTheCpu) {
  CUTRAIN_REQUIRE_GPU();
  for (const auto& [name, c] : conv_goldens().items()) {
    check_golden(name, c, Device::cuda(0));
    // Everything but the GEMMs is the same rule in the same order on both backends: pooling and
    // BatchNorm2d agree bit for bit; a convolution's GEMMs differ in accumulation order only.
    const LayerRun cpu = run(c, Device::cpu()), gpu = run(c, Device::cuda(0));
    if (c.at("type") != "Conv2d") {
      EXPECT_EQ(cpu.y, gpu.y) << name;
      EXPECT_EQ(cpu.dx, gpu.dx) << name;
      EXPECT_EQ(cpu.grads, gpu.grads) << name;
      EXPECT_EQ(cpu.buffers, gpu.buffers) << name;
    }
  }
}

// The GPU lowers and un-lowers one element per lane (im2col_value, col2im_value), the CPU a row or
// plane at a time (im2col_row, col2im_plane): the rules are host functions too, so their agreement
// - bit for bit - is checked here, without a GPU, over strided, padded, dilated geometries.
TEST(Conv, ElementAndRowLoweringRulesAgree) {
  struct Case {
    std::int64_t c, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  for (const Case& t :
       {Case{2, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1}, Case{3, 7, 5, 3, 2, 2, 1, 1, 0, 1, 2},
        Case{1, 6, 6, 5, 5, 2, 2, 2, 2, 2, 2}, Case{2, 4, 9, 1, 3, 3, 2, 0, 1, 1, 1}}) {
    rules::ConvGeometry g{t.c,  t.h,  t.w,  3,    0,    0,    t.kh, t.kw,
                          t.sh, t.sw, t.ph, t.pw, t.dh, t.dw, 1};
    g.ho = rules::conv_output_size(g.h, g.kh, g.sh, g.ph, g.dh);
    g.wo = rules::conv_output_size(g.w, g.kw, g.sw, g.pw, g.dw);
    const std::int64_t nb = 2, cols = nb * g.p();
    std::vector<float> x(static_cast<std::size_t>(nb * g.c * g.in_plane()));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(1.3F * static_cast<float>(i));
    std::vector<float> by_row(static_cast<std::size_t>(g.k() * cols));
    for (std::int64_t k = 0; k < g.k(); ++k)
      for (std::int64_t n = 0; n < nb; ++n)
        rules::im2col_row(g, x.data(), n, k, by_row.data() + k * cols + n * g.p());
    for (std::int64_t i = 0; i < g.k() * cols; ++i)
      ASSERT_EQ(rules::im2col_value(g, x.data(), nb, i), by_row[static_cast<std::size_t>(i)]) << i;
    std::vector<float> dcol(by_row.size());
    for (std::size_t i = 0; i < dcol.size(); ++i) dcol[i] = std::sin(0.7F * static_cast<float>(i));
    std::vector<float> plane(static_cast<std::size_t>(g.in_plane()));
    for (std::int64_t n = 0; n < nb; ++n)
      for (std::int64_t c = 0; c < g.c; ++c) {
        rules::col2im_plane(g, dcol.data(), nb, n, c, plane.data());
        for (std::int64_t e = 0; e < g.in_plane(); ++e)
          ASSERT_EQ(rules::col2im_value(g, dcol.data(), nb, (n * g.c + c) * g.in_plane() + e),
                    plane[static_cast<std::size_t>(e)]);
      }
  }
}

// The CPU pools a plane at a time (pool_plane, pool_grad_plane: for max pooling without padding a
// scan without bounds checks, 2 x 2 windows as selects, and a scatter when windows do not
// overlap), the GPU an element per lane: the same bits, NaNs, ties and -0 gradients included,
// checked here on the host.
TEST(Conv, ElementAndPlanePoolingRulesAgree) {
  struct Case {
    std::int64_t h, w, k, s, pad;
  };
  const auto bits = [](float f) { return std::bit_cast<std::uint32_t>(f); };
  for (const Case& t : {Case{6, 5, 2, 2, 0}, Case{11, 12, 2, 2, 0}, Case{7, 7, 3, 2, 0},
                        Case{8, 7, 2, 3, 0}, Case{7, 6, 3, 2, 1}, Case{5, 5, 1, 1, 0}}) {
    SCOPED_TRACE(t.k * 100 + t.s * 10 + t.pad);
    const rules::ConvGeometry g =
        rules::conv_geometry(1, t.h, t.w, 1, t.k, t.k, t.s, t.s, t.pad, t.pad, 1, 1);
    std::vector<float> x(static_cast<std::size_t>(g.in_plane()));
    for (std::size_t i = 0; i < x.size(); ++i)  // ties (rounded values), a NaN, -0
      x[i] = std::round(3.0F * std::sin(1.7F * static_cast<float>(i)));
    x[7] = NAN;
    x[3] = -0.0F;
    std::vector<float> y(static_cast<std::size_t>(g.p())), dy(y.size());
    std::vector<std::int32_t> index(y.size());
    rules::pool_plane(rules::Pool::kMax, g, x.data(), y.data(), index.data());
    std::vector<std::int32_t> element_index(index.size(), -2);  // pool_value writes its o-th
    for (std::int64_t o = 0; o < g.p(); ++o) {
      ASSERT_EQ(bits(rules::pool_value(rules::Pool::kMax, g, x.data(), o, element_index.data())),
                bits(y[static_cast<std::size_t>(o)]))
          << o;
      ASSERT_EQ(element_index[static_cast<std::size_t>(o)], index[static_cast<std::size_t>(o)])
          << o;
      dy[static_cast<std::size_t>(o)] = o % 3 == 0 ? -0.0F : std::cos(static_cast<float>(o));
    }
    std::vector<float> dx(x.size());
    rules::pool_grad_plane(rules::Pool::kMax, g, dy.data(), index.data(), dx.data());
    for (std::int64_t i = 0; i < g.in_plane(); ++i)
      ASSERT_EQ(bits(rules::pool_grad(rules::Pool::kMax, g, dy.data(), index.data(), i)),
                bits(dx[static_cast<std::size_t>(i)]))
          << i;
  }
}

// ---- finite differences ------------------------------------------------------------------------

TEST(ConvFiniteDifferences, EveryLayer) {
  auto check = [](Shape in, std::unique_ptr<Layer> layer, const char* what) {
    SCOPED_TRACE(what);
    Sequential m(numel(in));
    m.emplace<Unflatten>(1, in);
    m.add(std::move(layer));
    m.build(Device::cpu(), 42);
    const GradCheckResult r = check_gradients(m, {.batch = 3, .seed = 7, .per_tensor = 0});
    EXPECT_TRUE(r.passed) << r.worst << "; " << r.kinks << " kinks of " << r.kinks + r.checked;
  };
  check({2, 5, 6}, std::make_unique<Conv2d>(2, 3, 3, 1, 1), "Conv2d 3x3 pad 1");
  check({2, 7, 6},
        std::make_unique<Conv2d>(2, 2, Size2{3, 2}, Size2{2, 1}, Size2{1, 0}, Size2{1, 2}),
        "Conv2d rectangular, strided, dilated");
  check({1, 6, 6}, std::make_unique<Conv2d>(1, 2, 5, 2, 2, 1, false), "Conv2d 5x5 no bias");
  check({4, 5, 6}, std::make_unique<Conv2d>(4, 6, 3, 1, 1, 1, true, 2), "Conv2d groups 2");
  check({3, 7, 6}, std::make_unique<Conv2d>(3, 3, 3, 2, 1, 1, false, 3),
        "Conv2d depthwise, strided");
  check({2, 6, 7},
        std::make_unique<Conv2d>(2, 4, Size2{3, 2}, 1, Size2{2, 1}, Size2{2, 1}, true, 2),
        "Conv2d depthwise x2, rectangular, dilated");
  check({2, 6, 5}, std::make_unique<MaxPool2d>(2), "MaxPool2d");
  check({2, 7, 7}, std::make_unique<MaxPool2d>(3, 2, 1), "MaxPool2d overlapping, padded");
  check({2, 6, 5}, std::make_unique<AvgPool2d>(3, 2, 1), "AvgPool2d padded");
  check({3, 5, 7}, std::make_unique<AdaptiveAvgPool2d>(1), "AdaptiveAvgPool2d(1)");
  check({2, 5, 7}, std::make_unique<AdaptiveAvgPool2d>(Size2{2, 3}), "AdaptiveAvgPool2d(2, 3)");
  check({3, 4, 5}, std::make_unique<BatchNorm2d>(3), "BatchNorm2d");
  check({3, 4, 5}, std::make_unique<Flatten>(), "Flatten");
}

// A small CNN end to end: conv, BN, tanh, pool, depthwise conv, conv, global pooling, flatten,
// linear.
Sequential small_cnn(Device device, std::uint64_t seed) {
  Sequential m(2 * 8 * 8);
  m.emplace<Unflatten>(1, Shape{2, 8, 8});
  m.emplace<Conv2d>(2, 4, 3, 1, 1).emplace<BatchNorm2d>(4);
  m.emplace<Activation>(Activation::Kind::kTanh).emplace<MaxPool2d>(2);
  m.emplace<Conv2d>(4, 4, 3, 1, 1, 1, true, 4);  // depthwise
  m.emplace<Conv2d>(4, 6, 3).emplace<Activation>(Activation::Kind::kSigmoid);
  m.emplace<AdaptiveAvgPool2d>(1).emplace<Flatten>().emplace<Linear>(6, 3);
  m.build(device, seed);
  return m;
}

TEST(ConvFiniteDifferences, SmallCnnEndToEnd) {
  Sequential m = small_cnn(Device::cpu(), 5);
  const GradCheckResult r = check_gradients(m, {.batch = 3, .seed = 11, .per_tensor = 12});
  EXPECT_TRUE(r.passed) << r.worst;
  EXPECT_GT(r.checked, 60U);
}

// ---- shapes
// --------------------------------------------------------------------------------------

TEST(Conv, ShapesFollowPyTorchAndBadOnesAreRefusedNamingTheLayer) {
  Sequential m(784);
  m.emplace<Unflatten>(1, Shape{1, 28, 28});
  m.emplace<Conv2d>(1, 32, 3, 1, 1).emplace<MaxPool2d>(2);
  m.emplace<Conv2d>(32, 64, 5, 2, 0, 2).emplace<AvgPool2d>(3, 1, 1);
  m.emplace<AdaptiveAvgPool2d>(Size2{2, 3}).emplace<Flatten>().emplace<Linear>(384, 10);
  m.build(Device::cpu(), 1);
  EXPECT_EQ(m.shape(1), (Shape{1, 28, 28}));
  EXPECT_EQ(m.shape(2), (Shape{32, 28, 28}));
  EXPECT_EQ(m.shape(3), (Shape{32, 14, 14}));
  EXPECT_EQ(m.shape(4), (Shape{64, 3, 3}));  // floor((14 - 2 * 4 - 1) / 2) + 1
  EXPECT_EQ(m.shape(5), (Shape{64, 3, 3}));
  EXPECT_EQ(m.shape(6), (Shape{64, 2, 3}));
  EXPECT_EQ(m.shape(7), (Shape{384}));
  EXPECT_EQ(m.output_features(), 10);
  EXPECT_NE(m.summary().find("[1, 28, 28] -> [32, 28, 28]"), std::string::npos) << m.summary();

  auto error = [](auto&& add) {
    Sequential bad(784);
    bad.emplace<Unflatten>(1, Shape{1, 28, 28});
    add(bad);
    return testing::error_of([&] { bad.build(Device::cpu(), 1); });
  };
  std::string e = error([](Sequential& s) { s.emplace<Conv2d>(3, 8, 3); });
  EXPECT_NE(e.find("layer 1 (Conv2d)"), std::string::npos) << e;
  EXPECT_NE(e.find("expects 3 input channels but its input has 1"), std::string::npos) << e;
  e = error([](Sequential& s) { s.emplace<Conv2d>(1, 8, 29); });
  EXPECT_NE(e.find("spans more than the padded input (28, 28)"), std::string::npos) << e;
  e = error([](Sequential& s) { s.emplace<Conv2d>(1, 8, 3).emplace<Linear>(26 * 26 * 8, 10); });
  EXPECT_NE(e.find("layer 2 (Linear)"), std::string::npos) << e;
  EXPECT_NE(e.find("add Flatten() before it"), std::string::npos) << e;
  e = error([](Sequential& s) { s.emplace<MaxPool2d>(30); });
  EXPECT_NE(e.find("larger than the padded input"), std::string::npos) << e;
  e = error([](Sequential& s) { s.emplace<BatchNorm2d>(4); });
  EXPECT_NE(e.find("expects 4 channels but its input has 1"), std::string::npos) << e;
  e = error([](Sequential& s) { s.emplace<BatchNorm1d>(784); });
  EXPECT_NE(e.find("use BatchNorm2d for images"), std::string::npos) << e;
  Sequential flat(784);
  flat.emplace<Unflatten>(1, Shape{2, 28, 28});
  e = testing::error_of([&] { flat.build(Device::cpu(), 1); });
  EXPECT_NE(e.find("the sizes hold 1568 values but dimension 1 of the input (shape [784]) has 784"),
            std::string::npos)
      << e;
  Sequential no_unflatten(784);
  no_unflatten.emplace<Conv2d>(1, 4, 3);
  e = testing::error_of([&] { no_unflatten.build(Device::cpu(), 1); });
  EXPECT_NE(e.find("add Unflatten(1, {C, H, W}) before it"), std::string::npos) << e;
  // Groups: torch's checks, and the weight [out, in/G, kh, kw].
  e = testing::error_of([] { Conv2d(3, 4, 3, 1, 0, 1, true, 2); });
  EXPECT_NE(e.find("in_channels must be divisible by groups (3 by 2)"), std::string::npos) << e;
  e = testing::error_of([] { Conv2d(4, 6, 3, 1, 0, 1, true, 4); });
  EXPECT_NE(e.find("out_channels must be divisible by groups (6 by 4)"), std::string::npos) << e;
  e = testing::error_of([] { Conv2d(4, 4, 3, 1, 0, 1, true, 0); });
  EXPECT_NE(e.find("groups = 0 must be a positive integer"), std::string::npos) << e;
  Sequential grouped(6 * 5 * 5);
  grouped.emplace<Unflatten>(1, Shape{6, 5, 5}).emplace<Conv2d>(6, 9, 3, 1, 0, 1, true, 3);
  grouped.build(Device::cpu(), 1);
  EXPECT_EQ(grouped.shape(2), (Shape{9, 3, 3}));
  EXPECT_EQ(grouped.parameters().layout().tensors().at(0).shape, (Shape{9, 2, 3, 3}));
  EXPECT_THROW(Conv2d(1, 4, 0), Error);
  EXPECT_THROW(MaxPool2d(2, 2, 2), Error);  // padding over half the kernel, as PyTorch refuses
}

// ---- determinism -----------------------------------------------------------------------------

std::vector<float> train_steps(Device device, std::int64_t batch = 5) {
  Sequential m = small_cnn(device, 3);
  std::vector<float> xs(static_cast<std::size_t>(batch * 128));
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.37F * static_cast<float>(i));
  DeviceMatrix x(xs, batch, 128, device);
  DeviceMatrix dy(std::vector<float>(static_cast<std::size_t>(batch * 3), 0.25F), batch, 3, device);
  for (int step = 0; step < 3; ++step) {
    m.forward(x.m);
    m.backward(dy.m);
    ops::axpy(-0.1F, m.gradients(), m.parameters());
  }
  return m.parameters().to_host();
}

TEST(Conv, SameSeedSameBits) {
  EXPECT_EQ(train_steps(Device::cpu()), train_steps(Device::cpu()));
}

// Note [convolution per sample on the CPU]: the batch's split into parts, not the threads,
// fixes the weight gradient's summation order. 37 samples: more than the 16 parts, unevenly.
TEST(Conv, SameBitsWhateverTheThreadCount) {
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  for (const int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    runs.push_back(train_steps(Device::cpu(), 37));
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(ConvGpu, SameSeedSameBitsAndCloseToTheCpu) {
  CUTRAIN_REQUIRE_GPU();
  const std::vector<float> a = train_steps(Device::cuda(0)), b = train_steps(Device::cuda(0));
  EXPECT_EQ(a, b);
  const std::vector<float> cpu = train_steps(Device::cpu());
  ASSERT_EQ(a.size(), cpu.size());
  // GEMM accumulation orders differ (cuBLAS vs OpenBLAS) over sums of up to 4 x 36 x 25 terms.
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], cpu[i], 1e-4) << i;
}

}  // namespace
}  // namespace cutrain::nn
