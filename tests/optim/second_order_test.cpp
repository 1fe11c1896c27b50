// Second-order methods. L-BFGS against torch.optim.LBFGS goldens (make_lbfgs_goldens.py) on
// softmax regression and on a quadratic with a known minimum; damped Newton-CG on the same
// problems, where it must show its fast local convergence.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim/lbfgs.hpp"
#include "cutrain/optim/newton_cg.hpp"
#include "golden_inputs.hpp"
#include "support/gpu.hpp"

namespace cutrain::optim {
namespace {

struct Problem {
  nn::Sequential model{20};
  Buffer x, labels, grad;
  nn::SoftmaxCrossEntropy loss;
  explicit Problem(Device device)
      : x(64 * 20 * sizeof(float), device),
        labels(64 * sizeof(std::int32_t), device),
        grad(64 * 3 * sizeof(float), device) {
    model.emplace<nn::Linear>(20, 3);
    model.build(device, 1);
    std::vector<float> w(60), xs(64 * 20);
    for (std::size_t k = 0; k < 60; ++k) w[k] = 0.1F * testing::unit(12, k);
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = testing::unit(11, i);
    std::vector<std::int32_t> ys(64);
    for (std::size_t i = 0; i < 64; ++i) ys[i] = static_cast<std::int32_t>(i % 3);
    model.parameters().tensor_from_host("layers.0.weight", w);
    model.parameters().tensor_from_host("layers.0.bias", std::vector<float>(3, 0.0F));
    copy_bytes(x.data(), device, xs.data(), Device::cpu(), x.bytes());
    copy_bytes(labels.data(), device, ys.data(), Device::cpu(), labels.bytes());
  }
  double closure() {
    const Device d = model.device();
    nn::Matrix xm{x.as<float>(), 64, 20, d}, g{grad.as<float>(), 64, 3, d};
    loss.compute(model.forward(xm), labels.as<std::int32_t>(), &g);
    model.backward(g);
    return loss.value();
  }
  std::vector<float> params() {
    auto p = model.parameters().tensor_to_host("layers.0.weight");
    const auto b = model.parameters().tensor_to_host("layers.0.bias");
    p.insert(p.end(), b.begin(), b.end());
    return p;
  }
};

void check_goldens(Device device) {
  std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/lbfgs.json");
  const auto golden = nlohmann::json::parse(in).at("cases");
  for (const auto& [name, c] : golden.items()) {
    Problem pr(device);
    LbfgsOptions o;
    o.lr = c.at("options").at("lr").get<float>();
    o.max_iter = c.at("options").at("max_iter");
    o.history_size = c.at("options").at("history_size");
    o.line_search_fn = c.at("options").value("line_search_fn", "");
    Lbfgs opt(pr.model.parameters(), pr.model.gradients(), o);
    // Exception: with the strong-Wolfe search, the fourth step (after ~24 evaluations, on a
    // nearly flat loss) is 1.05e-5 off (float32 dot products reduced in OpenBLAS's order vs
    // PyTorch's, amplified by the line search); steps 1-3 agree within 1e-5. OpenBLAS picks its
    // dot kernel by CPU, so the order differs by machine too: on an AVX-512 Xeon (SkylakeX
    // kernels) lr_half_long_history's second step is 1.05e-5 off without a line search, which
    // keeps within 1e-5 on AMD EPYC (Zen).
    const double tolerance = o.line_search_fn.empty() ? 2e-5 : 6e-5;
    int step = 0;
    for (const auto& s : c.at("steps")) {
      ++step;
      const double loss = opt.step([&] { return pr.closure(); });
      EXPECT_NEAR(loss, s.at("loss").get<double>(), 1e-5 * s.at("loss").get<double>()) << name;
      const auto want = s.at("params").get<std::vector<float>>();
      const auto got = pr.params();
      double scale = 0;
      for (const float v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
      for (std::size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got[i], want[i], tolerance * scale)
            << name << " step " << step << " parameter " << i;
    }
    EXPECT_EQ(opt.function_evaluations(), c.at("func_evals").get<std::int64_t>()) << name;
  }
}

TEST(Lbfgs, MatchesPyTorch) {
  check_goldens(Device::cpu());
}

// f(p) = sum a_i (p_i - c_i)^2 / 2 with condition number 100: the minimum is p = c.
struct Quadratic {
  Arena p, g;
  std::vector<double> a = std::vector<double>(200), c = std::vector<double>(200);
  Quadratic() {
    ArenaLayout::Builder b;
    b.add("p", {200});
    p = Arena(b.build(), Device::cpu());
    g = p.like();
    for (std::size_t i = 0; i < 200; ++i) {
      a[i] = 1.0 + 99.0 * static_cast<double>(i) / 199.0;
      c[i] = std::sin(0.1 * static_cast<double>(i));
    }
  }
  double operator()() {  // the closure: loss, and the gradient into g
    const auto v = p.tensor_to_host("p");
    std::vector<float> grad(200);
    double f = 0;
    for (std::size_t i = 0; i < 200; ++i) {
      const double e = v[i] - c[i];
      f += 0.5 * a[i] * e * e;
      grad[i] = static_cast<float>(a[i] * e);
    }
    g.tensor_from_host("p", grad);
    return f;
  }
};

TEST(Lbfgs, ConvergesOnAQuadratic) {
  Quadratic q;
  Arena& p = q.p;
  Arena& g = q.g;
  const std::vector<double>& c = q.c;
  auto closure = [&] { return q(); };
  LbfgsOptions o;
  o.max_iter = 200;
  o.tolerance_grad = 1e-5;
  Lbfgs opt(p, g, o);
  opt.step(closure);
  const auto v = p.tensor_to_host("p");
  for (std::size_t i = 0; i < 200; ++i) ASSERT_NEAR(v[i], c[i], 1e-4) << i;
  EXPECT_LT(opt.iterations(), 150);
  LbfgsOptions bad;
  bad.history_size = 0;
  EXPECT_THROW(Lbfgs(p, g, bad), Error);
  bad = {};
  bad.tolerance_grad = -1;
  EXPECT_THROW(Lbfgs(p, g, bad), Error);
  bad = {};
  bad.line_search_fn = "backtracking";
  EXPECT_THROW(Lbfgs(p, g, bad), Error);
}

// The quadratic of ConvergesOnAQuadratic (H = diag(a)): Newton-CG reaches the minimum and its
// last iterations converge superlinearly.
TEST(NewtonCg, SolvesAQuadraticInAFewIterations) {
  Quadratic q;
  Arena& p = q.p;
  Arena& g = q.g;
  const std::vector<double>& c = q.c;
  auto closure = [&] { return q(); };
  NewtonCgOptions o;
  o.damping = 0;
  o.cg_max_iter = 200;
  o.tolerance_grad = 1e-3;
  o.max_iter = 1;
  NewtonCg opt(p, g, o);
  std::vector<double> norms;
  for (int i = 0; i < 30 && (norms.empty() || norms.back() > 1e-3); ++i) {
    opt.step(closure);
    norms.push_back(opt.gradient_norm());
  }
  const auto v = p.tensor_to_host("p");
  for (std::size_t i = 0; i < 200; ++i) ASSERT_NEAR(v[i], c[i], 1e-4) << i;
  // Measured: 146 33.5 9 3.6 1.68 0.787 0.353 0.0975 0.0291 0.00364 0.000173. While |g| > 0.25
  // the forcing term is 0.5 |g| (CG only halves the residual); then it tightens with sqrt|g|
  // and the last reductions are superlinear.
  const std::size_t n = norms.size();
  ASSERT_GE(n, 3u);
  EXPECT_LE(opt.iterations(), 12);
  EXPECT_LE(opt.gradient_norm(), 1e-3);
  EXPECT_LT(norms[n - 1], 0.2 * norms[n - 2]);
  EXPECT_LT(norms[n - 2], 0.2 * norms[n - 3]);
}

// Softmax regression: one Newton iteration at a time; near the optimum each iteration must cut
// the gradient norm by far more than a linear rate would (superlinear convergence), and the
// final loss must beat four L-BFGS steps' (the golden).
TEST(NewtonCg, ConvergesFastOnSoftmaxRegression) {
  Problem pr(Device::cpu());
  NewtonCgOptions o;
  o.max_iter = 1;
  o.tolerance_grad = 1e-5;
  NewtonCg opt(pr.model.parameters(), pr.model.gradients(), o);
  std::vector<double> norms;
  double loss = 0;
  for (int i = 0; i < 12 && (norms.empty() || norms.back() > 1e-5); ++i) {
    loss = opt.step([&] { return pr.closure(); });
    norms.push_back(opt.gradient_norm());
  }
  ASSERT_GE(norms.size(), 3u);
  EXPECT_LE(norms.back(), 2e-5) << "gradient norm after " << norms.size() << " iterations";
  // Superlinear: the last reductions are each at least 10x.
  const std::size_t n = norms.size();
  EXPECT_LT(norms[n - 1], 0.1 * norms[n - 2]);
  EXPECT_LT(norms[n - 2], 0.1 * norms[n - 3]);
  std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/lbfgs.json");
  const double lbfgs_final =
      nlohmann::json::parse(in).at("cases").at("default").at("steps").back().at("loss");
  EXPECT_LT(loss, lbfgs_final);
  NewtonCgOptions bad;
  bad.cg_max_iter = 0;
  EXPECT_THROW(NewtonCg(pr.model.parameters(), pr.model.gradients(), bad), Error);
}

TEST(LbfgsGpu, MatchesPyTorch) {
  CUTRAIN_REQUIRE_GPU();
  check_goldens(Device::cuda(0));
}

// Newton-CG on the GPU (cuBLAS level-1, cuBLAS GEMMs in the closure) follows the CPU's
// iterates: the same decisions (accepted steps, damping) and parameters within float32
// reduction-order noise amplified by a few CG solves.
TEST(NewtonCgGpu, FollowsTheCpuIterates) {
  CUTRAIN_REQUIRE_GPU();
  Problem cpu(Device::cpu()), gpu(Device::cuda(0));
  NewtonCgOptions o;
  o.max_iter = 1;
  o.tolerance_grad = 1e-5;
  NewtonCg a(cpu.model.parameters(), cpu.model.gradients(), o);
  NewtonCg b(gpu.model.parameters(), gpu.model.gradients(), o);
  for (int i = 0; i < 5; ++i) {
    const double la = a.step([&] { return cpu.closure(); });
    const double lb = b.step([&] { return gpu.closure(); });
    EXPECT_NEAR(lb, la, 1e-4 * la) << "iteration " << i;
    EXPECT_EQ(b.damping(), a.damping()) << "iteration " << i;
    const auto pa = cpu.params(), pb = gpu.params();
    double scale = 0;
    for (const float v : pa) scale = std::max(scale, std::fabs(static_cast<double>(v)));
    for (std::size_t k = 0; k < pa.size(); ++k)
      ASSERT_NEAR(pb[k], pa[k], 1e-3 * scale) << "iteration " << i << " element " << k;
  }
}

}  // namespace
}  // namespace cutrain::optim
