// L-BFGS over flat arenas (formulas: include/cutrain/optim/lbfgs.hpp). The loop mirrors
// torch.optim.LBFGS.step so that iterates agree with PyTorch's to rounding: its scalars
// (y.s, 1/y.s, H_diag, the recursion's alphas and betas, t) are 0-dim float32 tensors there,
// so they are floats here too.
#include "cutrain/optim/lbfgs.hpp"

#include <cmath>
#include <vector>

#include "cutrain/error.hpp"
#include "src/optim/blas1.hpp"

namespace cutrain::optim {

Lbfgs::Lbfgs(Arena& params, Arena& grads, const LbfgsOptions& options)
    : params_(params), grads_(grads), o_(options) {
  require_same_layout(params, grads, "Lbfgs(params, grads)");
  CUTRAIN_CHECK(params.total() < static_cast<std::size_t>(INT32_MAX), "Lbfgs: ", params.total(),
                " parameters exceed BLAS's int count");
  CUTRAIN_CHECK(std::isfinite(o_.lr) && o_.lr > 0, "LBFGS: lr = ", o_.lr,
                " is invalid; valid: finite and > 0");
  CUTRAIN_CHECK(o_.max_iter > 0, "LBFGS: max_iter = ", o_.max_iter, " must be > 0");
  CUTRAIN_CHECK(o_.history_size > 0, "LBFGS: history_size = ", o_.history_size, " must be > 0");
  CUTRAIN_CHECK(o_.tolerance_grad > 0 && o_.tolerance_change > 0, "LBFGS: tolerance_grad (",
                o_.tolerance_grad, ") and tolerance_change (", o_.tolerance_change,
                ") must be > 0");
  CUTRAIN_CHECK(o_.max_eval >= 0, "LBFGS: max_eval must be >= 0");
  CUTRAIN_CHECK(o_.line_search_fn.empty(), "LBFGS: line_search_fn '", o_.line_search_fn,
                "' is not implemented; use none (empty)");
  if (o_.max_eval == 0) o_.max_eval = o_.max_iter * 5 / 4;
  blas_ = std::make_unique<Blas1>(params.device());
  d_ = params.like();
  prev_grad_ = params.like();
  q_ = params.like();
}

Lbfgs::~Lbfgs() = default;

double Lbfgs::step(const Closure& closure) {
  Blas1& b = *blas_;
  const double orig_loss = closure();
  double loss = orig_loss;
  int current_evals = 1;
  ++func_evals_;
  bool opt_cond = b.amax(grads_) <= o_.tolerance_grad;
  if (opt_cond) return orig_loss;
  for (int it = 1; it <= o_.max_iter; ++it) {
    ++n_iter_;
    if (n_iter_ == 1) {
      d_.copy_from(grads_);
      b.scal(-1.0, d_);
      old_dirs_.clear();
      old_stps_.clear();
      ro_.clear();
      h_diag_ = 1;
    } else {
      // y = g - g_prev (into prev_grad_, which is refreshed below); s = t d.
      Arena y = grads_.copy_to(grads_.device());
      b.axpy(-1.0, prev_grad_, y);
      Arena s = d_.copy_to(d_.device());
      b.scal(t_, s);
      const auto ys = static_cast<float>(b.dot(y, s));
      if (ys > 1e-10F) {
        if (static_cast<int>(old_dirs_.size()) == o_.history_size) {
          old_dirs_.pop_front();
          old_stps_.pop_front();
          ro_.pop_front();
        }
        h_diag_ = ys / static_cast<float>(b.dot(y, y));
        old_dirs_.push_back(std::move(y));
        old_stps_.push_back(std::move(s));
        ro_.push_back(1.0F / ys);
      }
      // Two-loop recursion: d = -H g.
      const std::size_t m = old_dirs_.size();
      std::vector<float> al(m);
      q_.copy_from(grads_);
      b.scal(-1.0, q_);
      for (std::size_t k = m; k-- > 0;) {
        al[k] = static_cast<float>(b.dot(old_stps_[k], q_)) * static_cast<float>(ro_[k]);
        b.axpy(-al[k], old_dirs_[k], q_);
      }
      d_.copy_from(q_);
      b.scal(h_diag_, d_);
      for (std::size_t k = 0; k < m; ++k) {
        const float be = static_cast<float>(b.dot(old_dirs_[k], d_)) * static_cast<float>(ro_[k]);
        b.axpy(al[k] - be, old_stps_[k], d_);
      }
    }
    prev_grad_.copy_from(grads_);
    prev_loss_ = loss;
    has_prev_ = true;
    t_ = n_iter_ == 1 ? std::min(1.0F, 1.0F / static_cast<float>(b.asum(grads_))) * o_.lr : o_.lr;
    const auto gtd = static_cast<float>(b.dot(grads_, d_));
    if (gtd > -o_.tolerance_change) break;
    int ls_evals = 0;
    b.axpy(t_, d_, params_);
    if (it != o_.max_iter) {
      loss = closure();
      opt_cond = b.amax(grads_) <= o_.tolerance_grad;
      ls_evals = 1;
    }
    current_evals += ls_evals;
    func_evals_ += ls_evals;
    if (it == o_.max_iter || current_evals >= o_.max_eval || opt_cond) break;
    if (b.amax(d_) * std::fabs(t_) <= o_.tolerance_change) break;
    if (std::fabs(loss - prev_loss_) < o_.tolerance_change) break;
  }
  return orig_loss;
}

}  // namespace cutrain::optim
