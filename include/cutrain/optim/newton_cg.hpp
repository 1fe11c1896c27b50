#pragma once
// Damped Newton's method by conjugate gradients ("Hessian-free", Martens 2010; Nocedal &
// Wright Alg. 7.1), for full-batch training of small models, driven by a closure that
// recomputes the loss and the gradients.
//
// Each iteration solves (H + lambda I) d = -g by CG, stopped at residual
// |r| <= min(0.5, sqrt|g|) |g| (a superlinear forcing sequence), after cg_max_iter iterations,
// or at the first direction of non-positive curvature (then the CG iterate so far is used, or
// -g when there is none). H v comes from a forward difference of gradients,
//   H v ~ (g(p + eps v) - g(p)) / eps,   eps = sqrt(u) (1 + |p|) / |v|,   u = 2^-23,
// which balances truncation (O(eps |v|^2)) against float32 rounding (O(u / eps)) (Nocedal &
// Wright eq. 8.3). Levenberg-Marquardt damping: a step that lowers the loss is taken and lambda
// shrinks by 3; one that does not is undone and lambda grows by 10.

#include <cstdint>
#include <functional>
#include <memory>

#include "cutrain/arena.hpp"

namespace cutrain::optim {

struct Blas1;  ///< src/optim/blas1.hpp

struct NewtonCgOptions {
  int max_iter = 20;             ///< Newton iterations per step()
  int cg_max_iter = 50;          ///< conjugate-gradient iterations per Newton iteration, at most
  double damping = 1e-3;         ///< initial lambda
  double min_damping = 1e-8;     ///< the damping never falls below this
  double tolerance_grad = 1e-6;  ///< stop when |g|_2 <= this
};

/// Damped Newton-CG (Hessian-vector products by finite differences of gradients) for full-batch
/// training.
class NewtonCg {
 public:
  using Closure = std::function<double()>;  ///< loss at params; writes grads
  /// Newton-CG on `params`, reading the gradients the closure writes into `grads`.
  NewtonCg(Arena& params, Arena& grads, const NewtonCgOptions& options);
  ~NewtonCg();
  /// Runs up to max_iter Newton iterations; returns the final loss.
  double step(const Closure& closure);
  std::int64_t iterations() const { return iterations_; }       ///< Newton iterations so far
  std::int64_t function_evaluations() const { return evals_; }  ///< closure calls so far
  double gradient_norm() const { return grad_norm_; }           ///< |g|_2 after the last step()
  double damping() const { return lambda_; }  ///< the current Levenberg-Marquardt lambda

 private:
  Arena& params_;
  Arena& grads_;
  NewtonCgOptions o_;
  std::unique_ptr<Blas1> blas_;
  double lambda_;
  double grad_norm_ = 0;
  std::int64_t iterations_ = 0, evals_ = 0;
};

}  // namespace cutrain::optim
