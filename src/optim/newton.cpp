// Exact damped Newton and the logistic-regression objective (formulas:
// include/cutrain/optim/newton.hpp).
#include "cutrain/optim/newton.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "cutrain/error.hpp"

// LAPACK's Cholesky solve, from OpenBLAS (which bundles LAPACK). Fortran character arguments
// carry a hidden length at the end of the argument list (gfortran's ABI); passing it is what
// LAPACKE itself does (LAPACK_FORTRAN_STRLEN_END).
extern "C" void dposv_(const char* uplo, const int* n, const int* nrhs, double* a, const int* lda,
                       double* b, const int* ldb, int* info, std::size_t uplo_len);

namespace cutrain::optim {
namespace {

double norm2(std::span<const double> v) {
  return cblas_dnrm2(static_cast<int>(v.size()), v.data(), 1);
}

}  // namespace

Newton::Newton(const NewtonOptions& options) : o_(options) {
  CUTRAIN_CHECK(o_.max_iter > 0, "Newton: max_iter = ", o_.max_iter, " must be > 0");
  CUTRAIN_CHECK(o_.tolerance_grad > 0 && std::isfinite(o_.tolerance_grad),
                "Newton: tolerance_grad = ", o_.tolerance_grad, " must be finite and > 0");
  CUTRAIN_CHECK(std::isfinite(o_.damping) && o_.damping >= 0, "Newton: damping = ", o_.damping,
                " is invalid; valid: finite and >= 0");
  CUTRAIN_CHECK(o_.armijo_c1 > 0 && o_.armijo_c1 < 0.5, "Newton: armijo_c1 = ", o_.armijo_c1,
                " must be in (0, 0.5)");
  CUTRAIN_CHECK(o_.max_backtracks > 0, "Newton: max_backtracks = ", o_.max_backtracks,
                " must be > 0");
}

NewtonResult Newton::minimize(const Objective& f, std::vector<double>& x) const {
  const auto n64 = static_cast<std::int64_t>(x.size());
  CUTRAIN_CHECK(n64 > 0 && n64 <= kMaxNewtonSize, "Newton: ", n64,
                " parameters; exact Newton forms an n x n Hessian and supports 1..", kMaxNewtonSize,
                " (use NewtonCg for larger problems)");
  const int n = static_cast<int>(n64);
  const auto un = static_cast<std::size_t>(n);
  std::vector<double> g(un), h(un * un), a(un * un), d(un), trial(un), g_trial(un);
  NewtonResult r;
  double loss = f(x, g, h);
  ++r.evaluations;
  CUTRAIN_CHECK(std::isfinite(loss), "Newton: the objective is ", loss,
                " at the starting point; start where it is finite");
  double lambda = o_.damping;
  for (;;) {
    r.grad_norm = norm2(g);
    r.grad_norms.push_back(r.grad_norm);
    if (r.grad_norm <= o_.tolerance_grad) {
      r.converged = true;
      break;
    }
    if (r.iterations == o_.max_iter) break;
    // Cholesky of H + lambda I, damping more until it is positive definite.
    double max_diag = 0;
    for (std::size_t i = 0; i < un; ++i) max_diag = std::max(max_diag, std::fabs(h[i * un + i]));
    int info = 1;
    for (int attempt = 0; info != 0; ++attempt) {
      CUTRAIN_CHECK(attempt < 100, "Newton: H + lambda I stayed indefinite up to lambda = ", lambda,
                    "; the Hessian from the objective is not finite or not symmetric");
      std::copy(h.begin(), h.end(), a.begin());
      for (std::size_t i = 0; i < un; ++i) a[i * un + i] += lambda;
      for (std::size_t i = 0; i < un; ++i) d[i] = -g[i];
      const int nrhs = 1;
      // Row-major H is column-major H^T = H: 'U' reads the upper triangle either way.
      dposv_("U", &n, &nrhs, a.data(), &n, d.data(), &n, &info, 1);
      CUTRAIN_CHECK(info >= 0, "Newton: dposv rejected argument ", -info);
      if (info != 0) lambda = std::max(10 * lambda, 1e-8 * std::max(max_diag, 1.0));
    }
    // Backtracking (Armijo) from the full step.
    const double slope = cblas_ddot(n, g.data(), 1, d.data(), 1);
    double t = 1, trial_loss = 0;
    bool accepted = false;
    for (int k = 0; k < o_.max_backtracks && !accepted; ++k, t *= 0.5) {
      for (std::size_t i = 0; i < un; ++i) trial[i] = x[i] + t * d[i];
      trial_loss = f(trial, g_trial, {});
      ++r.evaluations;
      accepted = std::isfinite(trial_loss) && trial_loss <= loss + o_.armijo_c1 * t * slope;
      if (accepted) break;
    }
    if (!accepted) {
      // At the float64 floor f cannot decrease any more: that is convergence in all but name.
      CUTRAIN_CHECK(r.grad_norm < 1e-6 * std::max(1.0, std::fabs(loss)),
                    "Newton: no step along the Newton direction lowers the objective (|g| = ",
                    r.grad_norm, "); is the objective smooth and its gradient correct?");
      break;
    }
    x.swap(trial);
    r.step_lengths.push_back(t);
    ++r.iterations;
    loss = f(x, g, h);  // the gradient again, now with the Hessian
    ++r.evaluations;
    lambda = o_.damping;  // damping is per iteration: convexity may differ at the new point
  }
  r.loss = loss;
  return r;
}

LogisticRegression::LogisticRegression(std::span<const float> x,
                                       std::span<const std::int32_t> labels, std::int64_t features,
                                       double l2)
    : rows_(static_cast<std::int64_t>(labels.size())), features_(features), l2_(l2) {
  CUTRAIN_CHECK(features > 0 && features < kMaxNewtonSize,
                "LogisticRegression: features = ", features, " must be in 1..", kMaxNewtonSize - 1);
  CUTRAIN_CHECK(rows_ > 0, "LogisticRegression: no rows");
  CUTRAIN_CHECK(static_cast<std::int64_t>(x.size()) == rows_ * features,
                "LogisticRegression: x has ", x.size(), " values but ", rows_, " labels x ",
                features, " features need ", rows_ * features);
  CUTRAIN_CHECK(std::isfinite(l2) && l2 >= 0, "LogisticRegression: l2 = ", l2,
                " must be finite and >= 0");
  const auto cols = static_cast<std::size_t>(features + 1);
  x_.resize(static_cast<std::size_t>(rows_) * cols);
  y_.resize(static_cast<std::size_t>(rows_));
  for (std::size_t i = 0; i < y_.size(); ++i) {
    CUTRAIN_CHECK(labels[i] == 0 || labels[i] == 1, "LogisticRegression: label ", labels[i],
                  " at row ", i, "; binary labels must be 0 or 1");
    y_[i] = labels[i];
    for (std::size_t j = 0; j + 1 < cols; ++j) {
      const float v = x[i * (cols - 1) + j];
      CUTRAIN_CHECK(std::isfinite(v), "LogisticRegression: x[", i, ", ", j, "] = ", v);
      x_[i * cols + j] = v;
    }
    x_[i * cols + cols - 1] = 1.0;
  }
}

double LogisticRegression::operator()(std::span<const double> theta, std::span<double> grad,
                                      std::span<double> hessian) const {
  const int n = static_cast<int>(size()), rows = static_cast<int>(rows_);
  CUTRAIN_CHECK(theta.size() == static_cast<std::size_t>(n) && grad.size() == theta.size(),
                "LogisticRegression: theta and grad need ", n, " values");
  CUTRAIN_CHECK(hessian.empty() || hessian.size() == static_cast<std::size_t>(n) * n,
                "LogisticRegression: the Hessian needs ", n, " x ", n, " values");
  std::vector<double> z(static_cast<std::size_t>(rows));
  cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, n, 1.0, x_.data(), n, theta.data(), 1, 0.0,
              z.data(), 1);
  const double inv_n = 1.0 / static_cast<double>(rows);
  double loss = 0;
  std::vector<double> residual(z.size()), weight(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double zi = z[i];
    loss += std::max(zi, 0.0) + std::log1p(std::exp(-std::fabs(zi))) - y_[i] * zi;
    // sigmoid without overflow: e^{-|z|} is in (0, 1].
    const double e = std::exp(-std::fabs(zi));
    const double p = zi >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    residual[i] = (p - y_[i]) * inv_n;
    weight[i] = p * (1.0 - p) * inv_n;
  }
  loss *= inv_n;
  cblas_dgemv(CblasRowMajor, CblasTrans, rows, n, 1.0, x_.data(), n, residual.data(), 1, 0.0,
              grad.data(), 1);
  double penalty = 0;
  for (int j = 0; j + 1 < n; ++j) {
    penalty += theta[j] * theta[j];
    grad[j] += l2_ * theta[j];
  }
  loss += 0.5 * l2_ * penalty;
  if (!hessian.empty()) {
    // H = B^T B with B_i = sqrt(w_i) x~_i: one DSYRK, then mirror the upper triangle.
    std::vector<double> b(x_.size());
    for (std::size_t i = 0; i < z.size(); ++i) {
      const double s = std::sqrt(weight[i]);
      for (std::size_t j = 0; j < static_cast<std::size_t>(n); ++j)
        b[i * n + j] = s * x_[i * n + j];
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, rows, 1.0, b.data(), n, 0.0,
                hessian.data(), n);
    const auto un = static_cast<std::size_t>(n);
    for (std::size_t i = 0; i < un; ++i)
      for (std::size_t j = 0; j < i; ++j) hessian[i * un + j] = hessian[j * un + i];
    for (std::size_t j = 0; j + 1 < un; ++j) hessian[j * un + j] += l2_;
  }
  return loss;
}

}  // namespace cutrain::optim
