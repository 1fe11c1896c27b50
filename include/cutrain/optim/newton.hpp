#pragma once
// Exact Newton's method for small problems whose Hessian can be formed (Nocedal & Wright
// Alg. 3.2 with a modified Hessian, §3.4), in float64 on the host: the companion of
// include/cutrain/optim/newton_cg.hpp, which never forms H and runs in float32 on either backend.
//
// Each iteration solves (H + lambda I) d = -g by Cholesky (LAPACK dposv from OpenBLAS). lambda
// starts at `damping` (0: the pure Newton step) and, when Cholesky finds H + lambda I not
// positive definite, grows to max(10 lambda, 1e-8 max|H_ii|) until it succeeds — so d is a
// descent direction. A backtracking line search then takes the first t in {1, 1/2, 1/4, ...}
// with f(x + t d) <= f(x) + c1 t g.d (Armijo, c1 = 1e-4). Near a minimum with a positive
// definite Hessian the full step t = 1 is accepted and the gradient norm converges
// quadratically: |g_{k+1}| <= C |g_k|^2. In float64, |g| reaches 1e-8 and below, which float32
// (Newton-CG, L-BFGS) cannot: their gradients carry rounding of ~1e-7 of the loss's scale.
//
// Cost per iteration: one objective evaluation with the Hessian (for logistic regression
// O(N n^2), a DSYRK) plus n^3/3 for Cholesky, plus one cheap evaluation per line-search trial.
// n is limited to kMaxNewtonSize (a 16384^2 Hessian is 2 GiB); use NewtonCg beyond.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace cutrain::optim {

inline constexpr std::int64_t kMaxNewtonSize = 16384;

/// Damping and stopping rules of the exact Newton method.
struct NewtonOptions {
  int max_iter = 50;             ///< Newton iterations, at most
  double tolerance_grad = 1e-8;  ///< stop when |g|_2 <= this
  double damping = 0;            ///< initial lambda (>= 0)
  double armijo_c1 = 1e-4;       ///< in (0, 0.5)
  int max_backtracks = 40;       ///< halvings before the step is declared failed
};

/// How a Newton solve ended: the final loss and gradient norm, iterations and the path taken.
struct NewtonResult {
  double loss = 0;         ///< the objective at the end
  double grad_norm = 0;    ///< |g|_2 at the end
  bool converged = false;  ///< grad_norm <= tolerance_grad
  int iterations = 0;      ///< Newton steps taken
  int evaluations = 0;     ///< objective calls (with or without Hessian)
  /// |g| at the start of each iteration and at the end: iterations + 1 values.
  std::vector<double> grad_norms;
  std::vector<double> step_lengths;  ///< t accepted by the line search, one per iteration
};

/// Exact Newton steps (float64 Hessian, LAPACK Cholesky) for small convex problems such as logistic
/// regression.
class Newton {
 public:
  /// Loss at x; writes the gradient into grad (size n) and, when hessian is not empty, the
  /// n x n Hessian (row-major; only symmetry is assumed, either triangle may be read).
  using Objective = std::function<double(std::span<const double> x, std::span<double> grad,
                                         std::span<double> hessian)>;
  explicit Newton(const NewtonOptions& options = {});  ///< options checked here
  /// Minimizes from x (updated in place). Throws cutrain::Error on bad sizes, a non-finite
  /// loss at the start, or a line search that cannot decrease f (a non-smooth objective).
  NewtonResult minimize(const Objective& f, std::vector<double>& x) const;

 private:
  NewtonOptions o_;
};

/// Binary logistic regression with an L2 penalty on the weights (not the bias), the strictly
/// convex problem Newton is made for. theta = [w (features), b]; z_i = w.x_i + b; y_i in {0, 1}:
///   f = (1/N) sum_i [log(1 + e^{z_i}) - y_i z_i] + (l2 / 2) |w|^2
///   g = (1/N) X~^T (p - y) + l2 [w; 0],        p_i = sigmoid(z_i), X~ = [X 1]
///   H = (1/N) X~^T diag(p (1 - p)) X~ + l2 diag(1, ..., 1, 0)
/// log(1 + e^z) is evaluated as max(z, 0) + log1p(e^{-|z|}) (no overflow for large |z|).
/// Computed in float64 with BLAS (DGEMV for z and g, DSYRK for H).
class LogisticRegression {
 public:
  /// x: rows x features, row-major; labels 0 or 1. l2 >= 0 (> 0 makes the optimum unique
  /// even when the classes are separable).
  LogisticRegression(std::span<const float> x, std::span<const std::int32_t> labels,
                     std::int64_t features, double l2);
  std::int64_t size() const { return features_ + 1; }  ///< parameters: weights and bias
  /// The objective at theta; writes its gradient and (when not empty) its Hessian, row-major.
  double operator()(std::span<const double> theta, std::span<double> grad,
                    std::span<double> hessian) const;
  /// This problem as Newton::minimize's objective.
  Newton::Objective objective() const {
    return [this](std::span<const double> t, std::span<double> g, std::span<double> h) {
      return (*this)(t, g, h);
    };
  }

 private:
  std::int64_t rows_, features_;
  double l2_;
  std::vector<double> x_;  ///< rows x (features + 1), the last column all ones
  std::vector<double> y_;
};

}  // namespace cutrain::optim
