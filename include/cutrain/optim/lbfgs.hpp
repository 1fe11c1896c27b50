#pragma once
// L-BFGS with torch.optim.LBFGS's semantics, for full-batch or
// large-batch training of small models, driven by a closure that recomputes the loss and the
// gradients. One step() runs up to max_iter iterations:
//
//   d_1 = -g;  afterwards, with s = t d (the last step) and y = g - g_prev, the pair (s, y)
//   enters the history when y.s > 1e-10 (at most history_size pairs, oldest dropped), and
//   H_diag = y.s / y.y; d = -H g by the two-loop recursion (Nocedal & Wright, Alg. 7.4) with
//   H_0 = H_diag I.
//   t = min(1, 1 / |g|_1) lr on the very first iteration, lr afterwards;  p <- p + t d.
//   Stops when |g|_inf <= tolerance_grad, the directional derivative g.d > -tolerance_change,
//   |t d|_inf <= tolerance_change, |loss - prev_loss| < tolerance_change, max_iter iterations,
//   or max_eval closure evaluations (default max_iter * 5 / 4).
//
// With line_search_fn = "strong_wolfe", t comes from a strong-Wolfe line search (c1 = 1e-4,
// c2 = 0.9, cubic interpolation, at most 25 evaluations), as in PyTorch.
//
// The history lives on the parameters' device; the vector operations are BLAS level 1
// (OpenBLAS on the CPU, cuBLAS on CUDA) over the flat arenas.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "cutrain/arena.hpp"

namespace cutrain::optim {

struct Blas1;  ///< src/optim/blas1.hpp

struct LbfgsOptions {
  float lr = 1.0F;                 ///< torch.optim.LBFGS's lr
  int max_iter = 20;               ///< torch.optim.LBFGS's max_iter
  int max_eval = 0;                ///< 0: max_iter * 5 / 4
  double tolerance_grad = 1e-7;    ///< torch.optim.LBFGS's tolerance_grad
  double tolerance_change = 1e-9;  ///< torch.optim.LBFGS's tolerance_change
  int history_size = 100;          ///< torch.optim.LBFGS's history_size
  std::string line_search_fn;      ///< "" (none) or "strong_wolfe"
};

/// L-BFGS with a strong-Wolfe line search (torch.optim.LBFGS semantics), for full-batch training of
/// small models.
class Lbfgs {
 public:
  /// The closure computes the loss at the current params and writes d(loss)/d(params) into
  /// `grads` (same layout and device as `params`); it returns the loss.
  using Closure = std::function<double()>;
  /// Full-batch L-BFGS on `params`, reading the gradients the closure writes into `grads`.
  Lbfgs(Arena& params, Arena& grads, const LbfgsOptions& options);
  ~Lbfgs();
  /// One torch.optim.LBFGS.step(closure): returns the loss of the first evaluation.
  double step(const Closure& closure);
  std::int64_t function_evaluations() const { return func_evals_; }  ///< closure calls so far
  std::int64_t iterations() const { return n_iter_; }                ///< L-BFGS iterations so far

 private:
  int strong_wolfe(const Closure& closure, double& loss, double gtd);
  Arena& params_;
  Arena& grads_;
  LbfgsOptions o_;
  std::unique_ptr<Blas1> blas_;
  std::deque<Arena> old_dirs_, old_stps_;  ///< y and s pairs
  std::deque<float> ro_;
  Arena d_, prev_grad_, q_;
  float t_ = 0, h_diag_ = 1;
  double prev_loss_ = 0;
  bool has_prev_ = false;
  std::int64_t func_evals_ = 0, n_iter_ = 0;
};

}  // namespace cutrain::optim
