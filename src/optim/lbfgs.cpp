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
  CUTRAIN_CHECK(o_.line_search_fn.empty() || o_.line_search_fn == "strong_wolfe",
                "LBFGS: line_search_fn '", o_.line_search_fn,
                "' is unknown; valid: none (empty) or strong_wolfe");
  if (o_.max_eval == 0) o_.max_eval = o_.max_iter * 5 / 4;
  blas_ = std::make_unique<Blas1>(params.device());
  d_ = params.like();
  prev_grad_ = params.like();
  q_ = params.like();
}

Lbfgs::~Lbfgs() = default;

namespace {

// The minimizer of the cubic interpolating (x1, f1, g1) and (x2, f2, g2), clamped to
// [lo, hi] (Nocedal & Wright eq. 3.59); the bracket's midpoint when the cubic has no minimum.
// The slopes g are float32 scalars in PyTorch, which makes its interpolation float32; so here.
double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                         double lo, double hi) {
  const auto a = static_cast<float>(g1), b = static_cast<float>(g2);
  const float d1 = a + b - static_cast<float>(3 * (f1 - f2) / (x1 - x2));
  const float d2_square = d1 * d1 - a * b;
  if (d2_square < 0) return (lo + hi) / 2;
  const float d2 = std::sqrt(d2_square);
  const float min_pos = x1 <= x2 ? static_cast<float>(x2) - static_cast<float>(x2 - x1) *
                                                                ((b + d2 - d1) / (b - a + 2 * d2))
                                 : static_cast<float>(x1) - static_cast<float>(x1 - x2) *
                                                                ((a + d2 - d1) / (a - b + 2 * d2));
  return std::min(std::max(static_cast<double>(min_pos), lo), hi);
}

}  // namespace

// Strong-Wolfe line search along d_ from the current params (Nocedal & Wright Alg. 3.5 with
// the zoom of Alg. 3.6 and cubic interpolation; c1 = 1e-4, c2 = 0.9, at most 25 evaluations),
// as torch.optim.LBFGS(line_search_fn="strong_wolfe") runs it. Leaves params_ at x + t d,
// grads_ at the gradient there, t_ and `loss` updated; returns the closure evaluations.
int Lbfgs::strong_wolfe(const Closure& closure, double& loss, double gtd) {
  Blas1& b = *blas_;
  constexpr double c1 = 1e-4, c2 = 0.9;
  constexpr int max_ls = 25;
  const double d_norm = b.amax(d_);
  Arena x = params_.copy_to(params_.device());
  Arena g0 = grads_.copy_to(grads_.device());
  auto evaluate = [&](double t, Arena& g_out) {  // f and g at x + t d; params_ back to x
    params_.copy_from(x);
    b.axpy(t, d_, params_);
    const double f = closure();
    g_out.copy_from(grads_);
    params_.copy_from(x);
    return f;
  };
  const double f0 = loss;
  double t = t_;
  Arena g_new = grads_.like();
  double f_new = evaluate(t, g_new);
  int evals = 1;
  double gtd_new = static_cast<float>(b.dot(g_new, d_));
  double t_prev = 0, f_prev = f0, gtd_prev = gtd;
  Arena g_prev = g0.copy_to(g0.device());
  // The bracket [lo/hi], with values, gradients and directional derivatives.
  double bt[2] = {0, 0}, bf[2] = {0, 0}, bgtd[2] = {0, 0};
  Arena bg[2] = {grads_.like(), grads_.like()};
  int n = 0;  // bracket size: 1 when a point already satisfies the conditions
  bool done = false;
  int ls_iter = 0;
  while (ls_iter < max_ls) {
    const bool sufficient = !(f_new > f0 + c1 * t * gtd || (ls_iter > 1 && f_new >= f_prev));
    const bool curvature = std::fabs(gtd_new) <= -c2 * gtd;
    if (sufficient && curvature) {  // both strong-Wolfe conditions hold: take t
      bt[0] = t, bf[0] = f_new, bgtd[0] = gtd_new, bg[0].copy_from(g_new);
      n = 1;
      done = true;
      break;
    }
    if (!sufficient || gtd_new >= 0) {  // a minimum lies in [t_prev, t]
      bt[0] = t_prev, bf[0] = f_prev, bgtd[0] = gtd_prev, bg[0].copy_from(g_prev);
      bt[1] = t, bf[1] = f_new, bgtd[1] = gtd_new, bg[1].copy_from(g_new);
      n = 2;
      break;
    }
    const double min_step = t + 0.01 * (t - t_prev), max_step = t * 10;
    const double next =
        cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, min_step, max_step);
    t_prev = t, f_prev = f_new, gtd_prev = gtd_new;
    g_prev.copy_from(g_new);
    t = next;
    f_new = evaluate(t, g_new);
    ++evals;
    gtd_new = static_cast<float>(b.dot(g_new, d_));
    ++ls_iter;
  }
  if (ls_iter == max_ls) {
    bt[0] = 0, bf[0] = f0, bgtd[0] = gtd, bg[0].copy_from(g0);
    bt[1] = t, bf[1] = f_new, bgtd[1] = gtd_new, bg[1].copy_from(g_new);
    n = 2;
  }
  // Zoom.
  bool insufficient_progress = false;
  int lo = bf[0] <= bf[n - 1] ? 0 : 1, hi = 1 - lo;
  while (!done && ls_iter < max_ls && n == 2) {
    if (std::fabs(bt[1] - bt[0]) * d_norm < o_.tolerance_change) break;
    const double bmin = std::min(bt[0], bt[1]), bmax = std::max(bt[0], bt[1]);
    t = cubic_interpolate(bt[0], bf[0], bgtd[0], bt[1], bf[1], bgtd[1], bmin, bmax);
    // Keep t away from the bracket's ends when progress stalls.
    const double eps = 0.1 * (bmax - bmin);
    if (std::min(bmax - t, t - bmin) < eps) {
      if (insufficient_progress || t >= bmax || t <= bmin) {
        t = std::fabs(t - bmax) < std::fabs(t - bmin) ? bmax - eps : bmin + eps;
        insufficient_progress = false;
      } else {
        insufficient_progress = true;
      }
    } else {
      insufficient_progress = false;
    }
    f_new = evaluate(t, g_new);
    ++evals;
    gtd_new = static_cast<float>(b.dot(g_new, d_));
    ++ls_iter;
    if (f_new > f0 + c1 * t * gtd || f_new >= bf[lo]) {
      bt[hi] = t, bf[hi] = f_new, bgtd[hi] = gtd_new, bg[hi].copy_from(g_new);
      lo = bf[0] <= bf[1] ? 0 : 1;
      hi = 1 - lo;
    } else {
      if (std::fabs(gtd_new) <= -c2 * gtd) {
        done = true;
      } else if (gtd_new * (bt[hi] - bt[lo]) >= 0) {
        bt[hi] = bt[lo], bf[hi] = bf[lo], bgtd[hi] = bgtd[lo];
        bg[hi].copy_from(bg[lo]);
      }
      bt[lo] = t, bf[lo] = f_new, bgtd[lo] = gtd_new, bg[lo].copy_from(g_new);
    }
  }
  const int k = n == 1 ? 0 : lo;
  t_ = static_cast<float>(bt[k]);
  loss = bf[k];
  params_.copy_from(x);
  b.axpy(bt[k], d_, params_);
  grads_.copy_from(bg[k]);
  return evals;
}

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
    if (!o_.line_search_fn.empty()) {
      ls_evals = strong_wolfe(closure, loss, gtd);  // moves params_ and grads_ to the new point
      opt_cond = b.amax(grads_) <= o_.tolerance_grad;
    } else {
      b.axpy(t_, d_, params_);
      if (it != o_.max_iter) {
        loss = closure();
        opt_cond = b.amax(grads_) <= o_.tolerance_grad;
        ls_evals = 1;
      }
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
