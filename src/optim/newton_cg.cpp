// Damped Newton-CG over flat arenas (formulas and choices: include/cutrain/optim/newton_cg.hpp).
#include "cutrain/optim/newton_cg.hpp"

#include <cmath>

#include "src/optim/blas1.hpp"

namespace cutrain::optim {

NewtonCg::NewtonCg(Arena& params, Arena& grads, const NewtonCgOptions& options)
    : params_(params), grads_(grads), o_(options), lambda_(options.damping) {
  require_same_layout(params, grads, "NewtonCg(params, grads)");
  CUTRAIN_CHECK(o_.max_iter > 0 && o_.cg_max_iter > 0, "Newton-CG: max_iter (", o_.max_iter,
                ") and cg_max_iter (", o_.cg_max_iter, ") must be > 0");
  CUTRAIN_CHECK(std::isfinite(o_.damping) && o_.damping >= 0 && o_.min_damping >= 0,
                "Newton-CG: damping = ", o_.damping, " is invalid; valid: finite and >= 0");
  CUTRAIN_CHECK(o_.tolerance_grad > 0, "Newton-CG: tolerance_grad = ", o_.tolerance_grad,
                " must be > 0");
  blas_ = std::make_unique<Blas1>(params.device());
}

NewtonCg::~NewtonCg() = default;

double NewtonCg::step(const Closure& closure) {
  Blas1& b = *blas_;
  Arena g = params_.like(), d = params_.like(), r = params_.like(), pdir = params_.like();
  Arena hp = params_.like(), saved = params_.like();
  double loss = closure();
  ++evals_;
  g.copy_from(grads_);
  constexpr double kSqrtU = 3.4526698e-4;  // sqrt(2^-23)
  // (H + lambda I) v by a forward difference of gradients at the current params.
  auto hessian_vector = [&](const Arena& v, Arena& out) {
    const double vn = b.nrm2(v);
    const double eps = kSqrtU * (1.0 + b.nrm2(params_)) / std::max(vn, 1e-30);
    saved.copy_from(params_);
    b.axpy(eps, v, params_);
    closure();
    ++evals_;
    params_.copy_from(saved);
    out.copy_from(grads_);
    b.axpy(-1.0, g, out);
    b.scal(1.0 / eps, out);
    b.axpy(lambda_, v, out);
  };
  for (int it = 0; it < o_.max_iter; ++it) {
    grad_norm_ = b.nrm2(g);
    if (grad_norm_ <= o_.tolerance_grad) break;
    ++iterations_;
    // CG on (H + lambda I) d = -g from d = 0.
    d.zero();
    r.copy_from(g);
    b.scal(-1.0, r);
    pdir.copy_from(r);
    double rr = b.dot(r, r);
    const double stop = std::min(0.5, std::sqrt(grad_norm_)) * grad_norm_;
    bool any = false;
    for (int k = 0; k < o_.cg_max_iter; ++k) {
      hessian_vector(pdir, hp);
      const double curvature = b.dot(pdir, hp);
      if (curvature <= 0) break;  // non-positive curvature: keep the iterate so far
      const double alpha = rr / curvature;
      b.axpy(alpha, pdir, d);
      b.axpy(-alpha, hp, r);
      any = true;
      const double rr_new = b.dot(r, r);
      if (std::sqrt(rr_new) <= stop) break;
      b.scal(rr_new / rr, pdir);
      b.axpy(1.0, r, pdir);
      rr = rr_new;
    }
    if (!any) {  // no usable direction: steepest descent
      d.copy_from(g);
      b.scal(-1.0, d);
    }
    // Levenberg-Marquardt: accept a step that lowers the loss, else undo it and damp more.
    saved.copy_from(params_);
    b.axpy(1.0, d, params_);
    const double trial = closure();
    ++evals_;
    if (std::isfinite(trial) && trial < loss) {
      loss = trial;
      g.copy_from(grads_);
      lambda_ = std::max(o_.min_damping, lambda_ / 3.0);
    } else {
      params_.copy_from(saved);
      lambda_ = lambda_ == 0 ? 1e-3 : lambda_ * 10.0;
    }
  }
  grads_.copy_from(g);
  grad_norm_ = b.nrm2(g);
  return loss;
}

}  // namespace cutrain::optim
