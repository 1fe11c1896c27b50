// Exact Newton (include/cutrain/optim/newton.hpp): the logistic-regression objective against
// finite differences, a quadratic with a known minimum, a non-convex start that needs damping,
// and logistic regression on Fashion-MNIST against an optimum computed by PyTorch
// (make_newton_goldens.py), with the quadratic convergence Newton is used for.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cutrain/data/readers.hpp"
#include "cutrain/optim/lbfgs.hpp"
#include "cutrain/optim/newton.hpp"
#include "cutrain/optim/newton_cg.hpp"
#include "support/errors.hpp"
#include "support/random.hpp"

namespace cutrain::optim {
namespace {

using testing::error_of;

std::vector<double> to_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

TEST(LogisticRegression, GradientAndHessianMatchFiniteDifferences) {
  const std::int64_t rows = 30, features = 5, n = features + 1;
  const auto x = testing::uniform_values(rows * features, -2, 2, 7);
  std::vector<std::int32_t> y(rows);
  for (std::int64_t i = 0; i < rows; ++i) y[static_cast<std::size_t>(i)] = (i * 7 % 3) == 0;
  const LogisticRegression lr(x, y, features, 0.3);
  const auto theta = to_double(testing::uniform_values(n, -1, 1, 8));
  std::vector<double> g(n), h(n * n), gp(n), gm(n);
  lr(theta, g, h);
  const double eps = 1e-6;
  for (std::size_t j = 0; j < static_cast<std::size_t>(n); ++j) {
    auto tp = theta, tm = theta;
    tp[j] += eps;
    tm[j] -= eps;
    const double fp = lr(tp, gp, {}), fm = lr(tm, gm, {});
    EXPECT_NEAR(g[j], (fp - fm) / (2 * eps), 1e-8) << "gradient " << j;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
      EXPECT_NEAR(h[i * n + j], (gp[i] - gm[i]) / (2 * eps), 1e-8) << "Hessian " << i << "," << j;
  }
  // Large margins must not overflow: log(1 + e^z) for z = +-800.
  const LogisticRegression far(std::vector<float>{800.0F, -800.0F}, std::vector<std::int32_t>{0, 1},
                               1, 0.0);
  std::vector<double> g2(2);
  const double loss = far(std::vector<double>{1.0, 0.0}, g2, {});
  EXPECT_NEAR(loss, 800.0, 1e-9);  // both samples on the wrong side by 800
  EXPECT_NEAR(g2[0], 800.0, 1e-9);
}

TEST(Newton, SolvesAQuadraticInOneStep) {
  // f = 1/2 x^T A x - b^T x with A = M^T M + I (positive definite), minimum x* = A^{-1} b
  // known by construction: b = A x*.
  const std::size_t n = 40;
  const auto m = testing::uniform_values(n * n, -1, 1, 21);
  const auto x_star = to_double(testing::uniform_values(n, -3, 3, 22));
  std::vector<double> a(n * n), b(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = i == j ? 1.0 : 0.0;
      for (std::size_t k = 0; k < n; ++k) s += double{m[k * n + i]} * m[k * n + j];
      a[i * n + j] = s;
    }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) b[i] += a[i * n + j] * x_star[j];
  auto f = [&](std::span<const double> x, std::span<double> g, std::span<double> h) {
    double v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      g[i] = -b[i];
      for (std::size_t j = 0; j < n; ++j) g[i] += a[i * n + j] * x[j];
      v += 0.5 * x[i] * (g[i] - b[i]);
    }
    if (!h.empty()) std::copy(a.begin(), a.end(), h.begin());
    return v;
  };
  std::vector<double> x(n, 0.0);
  const NewtonResult r = Newton({.tolerance_grad = 1e-9}).minimize(f, x);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.iterations, 1);
  EXPECT_EQ(r.step_lengths.at(0), 1.0);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(x[i], x_star[i], 1e-10) << i;
}

TEST(Newton, DampsAnIndefiniteHessian) {
  // f = x0^4/4 - x0^2/2 + x1^2/2: at x0 = 0.1 the Hessian (3 x0^2 - 1 = -0.97) is indefinite,
  // the pure Newton step would climb to the maximum at 0. Minima at (+-1, 0).
  auto f = [](std::span<const double> x, std::span<double> g, std::span<double> h) {
    g[0] = x[0] * x[0] * x[0] - x[0];
    g[1] = x[1];
    if (!h.empty()) {
      h[0] = 3 * x[0] * x[0] - 1;
      h[1] = h[2] = 0;
      h[3] = 1;
    }
    return std::pow(x[0], 4) / 4 - x[0] * x[0] / 2 + x[1] * x[1] / 2;
  };
  std::vector<double> x{0.1, 1.0};
  const NewtonResult r = Newton({.tolerance_grad = 1e-12}).minimize(f, x);
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(x[0], 1.0, 1e-12);
  EXPECT_NEAR(x[1], 0.0, 1e-12);
  EXPECT_NEAR(r.loss, -0.25, 1e-15);
}

// The problem of make_newton_goldens.py: the first 200 T-shirts (label 0) and shirts (label 1)
// of Fashion-MNIST's training split in file order, pixels / 255, and PyTorch's optimum.
struct FashionLogistic {
  std::vector<float> x;
  std::vector<std::int32_t> y;
  nlohmann::json golden;
  std::string skip;  // why it cannot run (no data set)
  FashionLogistic() {
    data::Dataset d;
    try {
      d = data::load_fashion_mnist(data::kFashionMnistDir, "train");
    } catch (const Error& e) {
      skip = std::string("no Fashion-MNIST (apt-get install dataset-fashion-mnist): ") + e.what();
      return;
    }
    std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/newton_logistic.json");
    golden = nlohmann::json::parse(in);
    const int per_class = golden.at("per_class");
    int tshirts = 0, shirts = 0;
    for (std::int64_t r = 0; r < d.rows; ++r) {
      const std::int32_t c = d.labels[static_cast<std::size_t>(r)];
      if ((c == 0 && tshirts++ < per_class) || (c == 6 && shirts++ < per_class)) {
        for (std::int64_t j = 0; j < 784; ++j)
          x.push_back(d.x[static_cast<std::size_t>(r * 784 + j)] / 255.0F);
        y.push_back(c == 6);
      }
    }
  }
  LogisticRegression objective() const { return {x, y, 784, golden.at("l2").get<double>()}; }
  // max |theta - theta*| / max |theta*|
  double error(const std::vector<double>& theta) const {
    const auto want = golden.at("theta").get<std::vector<double>>();
    double scale = 0, err = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::fabs(want[i]));
      err = std::max(err, std::fabs(theta[i] - want[i]));
    }
    return err / scale;
  }
};

TEST(Newton, LogisticRegressionOnFashionMnistConvergesQuadraticallyToPyTorchsOptimum) {
  const FashionLogistic p;
  if (!p.skip.empty()) GTEST_SKIP() << p.skip;
  const auto& golden = p.golden;
  ASSERT_EQ(p.y.size(), 2U * golden.at("per_class").get<std::size_t>());
  const LogisticRegression lr = p.objective();

  std::vector<double> theta(static_cast<std::size_t>(lr.size()), 0.0);
  const NewtonResult r = Newton({.tolerance_grad = 1e-10}).minimize(lr.objective(), theta);
  ASSERT_TRUE(r.converged) << "|g| = " << r.grad_norm << " after " << r.iterations;
  // Fast local convergence: few iterations, the last ones full steps.
  std::string trace;
  for (const double gn : r.grad_norms) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3g ", gn);
    trace += buf;
  }
  std::printf("|g| per Newton iteration: %s\n", trace.c_str());
  EXPECT_LE(r.iterations, 12) << trace;
  std::size_t first_below = 0;  // iteration index where |g| first drops below 1e-8
  while (r.grad_norms[first_below] > 1e-8) ++first_below;
  EXPECT_LE(first_below, 11U) << trace;
  // Quadratic convergence: |g_{k+1}| <= C |g_k|^2 once |g_k| < 1e-2 (and above the float64
  // floor). C = 1e3 is loose; linear convergence at any rate < 1 breaks it within two steps.
  int quadratic_steps = 0;
  for (std::size_t k = 0; k + 1 < r.grad_norms.size(); ++k) {
    const double gk = r.grad_norms[k], gk1 = r.grad_norms[k + 1];
    if (gk < 1e-2 && gk1 > 1e-13) {
      EXPECT_LE(gk1, 1e3 * gk * gk) << "iteration " << k << ": " << trace;
      EXPECT_EQ(r.step_lengths[k], 1.0) << "iteration " << k;
      ++quadratic_steps;
    }
  }
  EXPECT_GE(quadratic_steps, 2) << trace;

  EXPECT_LT(p.error(theta), 1e-8);
  EXPECT_NEAR(r.loss, golden.at("loss").get<double>(), 1e-13);
}

// The float32 methods on the same problem (parameters in an arena, the objective evaluated in
// float64 and its gradient rounded to float32): both reach the same optimum, to what float32
// allows.
TEST(Newton, LbfgsAndNewtonCgReachTheSameOptimumInFloat32) {
  const FashionLogistic p;
  if (!p.skip.empty()) GTEST_SKIP() << p.skip;
  const LogisticRegression lr = p.objective();
  ArenaLayout::Builder b;
  b.add("theta", {785});
  const auto layout = b.build();
  for (const char* method : {"lbfgs", "newton-cg"}) {
    Arena params(layout, Device::cpu()), grads(layout, Device::cpu());
    params.zero();
    std::vector<double> theta(785), g(785);
    auto closure = [&] {
      const auto pf = params.to_host();
      for (std::size_t i = 0; i < theta.size(); ++i) theta[i] = pf[i];
      const double loss = lr(theta, g, {});
      std::vector<float> gf(pf.size(), 0.0F);
      for (std::size_t i = 0; i < g.size(); ++i) gf[i] = static_cast<float>(g[i]);
      grads.from_host(gf);
      return loss;
    };
    if (std::string(method) == "lbfgs") {
      Lbfgs opt(params, grads,
                {.max_iter = 400,
                 .tolerance_grad = 1e-6,
                 .tolerance_change = 1e-12,
                 .history_size = 20,
                 .line_search_fn = "strong_wolfe"});
      opt.step(closure);
    } else {
      NewtonCg opt(params, grads, {.max_iter = 30, .cg_max_iter = 100, .tolerance_grad = 1e-6});
      opt.step(closure);
    }
    const auto pf = params.to_host();
    std::vector<double> got(pf.begin(), pf.begin() + 785);
    std::vector<double> g_at(785);
    const double gnorm = [&] {
      lr(got, g_at, {});
      double s = 0;
      for (const double v : g_at) s += v * v;
      return std::sqrt(s);
    }();
    std::printf("%s: |g| %.3g, max error %.3g of max |theta*|\n", method, gnorm, p.error(got));
    // Measured on this CPU: L-BFGS |g| 5.3e-6 / error 6.3e-4 (it stalls where float32 line
    // searches stop making progress), Newton-CG 9.6e-7 / 8.7e-6. From theta = 0 both start at
    // |g| 0.94 and error 1.
    const bool lbfgs = std::string(method) == "lbfgs";
    EXPECT_LT(gnorm, lbfgs ? 2e-5 : 1e-5) << method;
    EXPECT_LT(p.error(got), lbfgs ? 3e-3 : 1e-4) << method;
  }
}

TEST(Newton, RejectsBadInput) {
  EXPECT_NE(error_of([] { Newton({.max_iter = 0}); }).find("max_iter = 0"), std::string::npos);
  EXPECT_NE(error_of([] { Newton({.tolerance_grad = 0}); }).find("tolerance_grad"),
            std::string::npos);
  EXPECT_NE(error_of([] { Newton({.tolerance_grad = -1}); }).find("must be finite and > 0"),
            std::string::npos);
  EXPECT_NE(error_of([] { Newton({.damping = -1}); }).find("damping"), std::string::npos);
  EXPECT_NE(error_of([] { Newton({.armijo_c1 = 0.5}); }).find("(0, 0.5)"), std::string::npos);
  auto quadratic = [](std::span<const double> x, std::span<double> g, std::span<double> h) {
    g[0] = x[0];
    if (!h.empty()) h[0] = 1;
    return 0.5 * x[0] * x[0];
  };
  std::vector<double> empty;
  EXPECT_NE(error_of([&] { Newton().minimize(quadratic, empty); }).find("use NewtonCg"),
            std::string::npos);
  auto nan_start = [](std::span<const double>, std::span<double> g, std::span<double>) {
    g[0] = 0;
    return std::nan("");
  };
  std::vector<double> one{1.0};
  EXPECT_NE(error_of([&] { Newton().minimize(nan_start, one); }).find("starting point"),
            std::string::npos);
  // A gradient that lies (points uphill): no step decreases f.
  auto wrong = [](std::span<const double> x, std::span<double> g, std::span<double> h) {
    g[0] = -x[0];
    if (!h.empty()) h[0] = 1;
    return 0.5 * x[0] * x[0];
  };
  EXPECT_NE(error_of([&] { Newton().minimize(wrong, one); }).find("gradient correct"),
            std::string::npos);

  const std::vector<float> x{1, 2, 3, 4};
  EXPECT_NE(error_of([&] {
              LogisticRegression(x, std::vector<std::int32_t>{0, 2}, 2, 0);
            }).find("label 2 at row 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              LogisticRegression(x, std::vector<std::int32_t>{0, 1, 1}, 2, 0);
            }).find("need 6"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              LogisticRegression(x, std::vector<std::int32_t>{0, 1}, 2, -1);
            }).find("l2 = -1"),
            std::string::npos);
}

}  // namespace
}  // namespace cutrain::optim
