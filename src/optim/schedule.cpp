#include "cutrain/optim/schedule.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>

#include "cutrain/error.hpp"
#include "src/core/numbers.hpp"

namespace cutrain::optim {
namespace {

void check_base(double base, const char* who) {
  CUTRAIN_CHECK(std::isfinite(base) && base >= 0, who, ": base lr = ", base,
                " is invalid; valid: finite and >= 0");
}
void check_k(std::int64_t k) {
  CUTRAIN_CHECK(k >= 0, "lr schedule: step ", k, " must be >= 0");
}

}  // namespace

ConstantLr::ConstantLr(double base) : base_(base) {
  check_base(base, "ConstantLr");
}

StepLr::StepLr(double base, std::int64_t step_size, double gamma)
    : base_(base), gamma_(gamma), step_size_(step_size) {
  check_base(base, "StepLr");
  CUTRAIN_CHECK(step_size > 0, "StepLr: step_size = ", step_size, " is invalid; valid: > 0");
  CUTRAIN_CHECK(std::isfinite(gamma) && gamma > 0, "StepLr: gamma = ", gamma,
                " is invalid; valid: finite and > 0");
}
double StepLr::lr(std::int64_t k) const {
  check_k(k);
  // Integer division on purpose: StepLR decays once per completed step_size (k // step_size).
  const std::int64_t decays = k / step_size_;
  return base_ * std::pow(gamma_, static_cast<double>(decays));
}

MultiStepLr::MultiStepLr(double base, std::vector<std::int64_t> milestones, double gamma)
    : base_(base), gamma_(gamma), milestones_(std::move(milestones)) {
  check_base(base, "MultiStepLr");
  CUTRAIN_CHECK(std::isfinite(gamma) && gamma > 0, "MultiStepLr: gamma = ", gamma,
                " is invalid; valid: finite and > 0");
  CUTRAIN_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()),
                "MultiStepLr: milestones must be in increasing order");
  for (const std::int64_t m : milestones_)
    CUTRAIN_CHECK(m > 0, "MultiStepLr: milestone ", m, " is invalid; valid: > 0");
}
double MultiStepLr::lr(std::int64_t k) const {
  check_k(k);
  const auto passed =
      std::upper_bound(milestones_.begin(), milestones_.end(), k) - milestones_.begin();
  return base_ * std::pow(gamma_, static_cast<double>(passed));
}

ExponentialLr::ExponentialLr(double base, double gamma) : base_(base), gamma_(gamma) {
  check_base(base, "ExponentialLr");
  CUTRAIN_CHECK(std::isfinite(gamma) && gamma > 0, "ExponentialLr: gamma = ", gamma,
                " is invalid; valid: finite and > 0");
}
double ExponentialLr::lr(std::int64_t k) const {
  check_k(k);
  return base_ * std::pow(gamma_, static_cast<double>(k));
}

LinearDecayLr::LinearDecayLr(double base, double final_lr, std::int64_t tau)
    : base_(base), final_(final_lr), tau_(tau) {
  check_base(base, "LinearDecayLr");
  check_base(final_lr, "LinearDecayLr (final lr)");
  CUTRAIN_CHECK(tau > 0, "LinearDecayLr: tau = ", tau, " is invalid; valid: > 0");
}
double LinearDecayLr::lr(std::int64_t k) const {
  check_k(k);
  if (k >= tau_) return final_;
  const double a = static_cast<double>(k) / static_cast<double>(tau_);
  return (1.0 - a) * base_ + a * final_;
}

CosineLr::CosineLr(double base, std::int64_t t_max, double eta_min)
    : base_(base), eta_min_(eta_min), t_max_(t_max) {
  check_base(base, "CosineLr");
  check_base(eta_min, "CosineLr (eta_min)");
  CUTRAIN_CHECK(t_max > 0, "CosineLr: t_max = ", t_max, " is invalid; valid: > 0");
}
CosineLr CosineLr::with_restarts(double base, std::int64_t t_0, std::int64_t t_mult,
                                 double eta_min) {
  CUTRAIN_CHECK(t_mult >= 1, "CosineLr: t_mult = ", t_mult, " is invalid; valid: >= 1");
  CosineLr c(base, t_0, eta_min);
  c.restarts_ = true;
  c.t_mult_ = t_mult;
  return c;
}
double CosineLr::lr(std::int64_t k) const {
  check_k(k);
  std::int64_t t_cur = k;
  std::int64_t period = t_max_;
  if (restarts_) {
    while (t_cur >= period) {
      t_cur -= period;
      period *= t_mult_;
    }
  }
  const double x = std::numbers::pi * static_cast<double>(t_cur) / static_cast<double>(period);
  return eta_min_ + (base_ - eta_min_) * (1.0 + std::cos(x)) / 2.0;
}

OneCycleLr::OneCycleLr(double max_lr, std::int64_t total_steps, double pct_start, Anneal anneal,
                       double div_factor, double final_div_factor, bool three_phase)
    : anneal_(anneal), total_(total_steps) {
  check_base(max_lr, "OneCycleLr (max_lr)");
  CUTRAIN_CHECK(total_steps > 1, "OneCycleLr: total_steps = ", total_steps,
                " is invalid; valid: > 1");
  CUTRAIN_CHECK(pct_start > 0 && pct_start < 1, "OneCycleLr: pct_start = ", pct_start,
                " is invalid; valid: (0, 1)");
  CUTRAIN_CHECK(std::isfinite(div_factor) && div_factor > 0 && std::isfinite(final_div_factor) &&
                    final_div_factor > 0,
                "OneCycleLr: div_factor = ", div_factor,
                " and final_div_factor = ", final_div_factor, " must be finite and > 0");
  const double initial = max_lr / div_factor, final_lr = initial / final_div_factor;
  const double total = static_cast<double>(total_steps);
  // PyTorch's float end steps (pct_start * total may be fractional).
  const double e1 = pct_start * total - 1.0;
  CUTRAIN_CHECK(e1 > 0 && (!three_phase || 2.0 * pct_start * total - 2.0 < total - 1.0),
                "OneCycleLr: pct_start = ", pct_start, " of ", total_steps,
                " steps leaves a phase empty; use more steps or another pct_start");
  if (three_phase)
    phases_ = {{e1, initial, max_lr},
               {2.0 * pct_start * total - 2.0, max_lr, initial},
               {total - 1.0, initial, final_lr}};
  else
    phases_ = {{e1, initial, max_lr}, {total - 1.0, max_lr, final_lr}};
}
double OneCycleLr::lr(std::int64_t k) const {
  check_k(k);
  const double step = static_cast<double>(std::min(k, total_ - 1));
  double start_step = 0.0;
  for (std::size_t i = 0; i < phases_.size(); ++i) {
    const Phase& p = phases_[i];
    if (step <= p.end_step || i + 1 == phases_.size()) {
      const double pct = (step - start_step) / (p.end_step - start_step);
      if (anneal_ == Anneal::kLinear) return (p.end_lr - p.start_lr) * pct + p.start_lr;
      return p.end_lr + (p.start_lr - p.end_lr) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
    }
    start_step = p.end_step;
  }
  return phases_.back().end_lr;  // not reached: the last phase always answers
}

WarmupLr::WarmupLr(std::unique_ptr<LrSchedule> inner, std::int64_t warmup, double start_factor)
    : inner_(std::move(inner)), warmup_(warmup), start_factor_(start_factor) {
  CUTRAIN_CHECK(inner_ != nullptr, "WarmupLr: the inner schedule is null");
  CUTRAIN_CHECK(warmup > 0, "WarmupLr: warmup = ", warmup, " is invalid; valid: > 0");
  CUTRAIN_CHECK(std::isfinite(start_factor) && start_factor >= 0 && start_factor <= 1,
                "WarmupLr: start_factor = ", start_factor, " is invalid; valid: [0, 1]");
}
double WarmupLr::lr(std::int64_t k) const {
  check_k(k);
  const double inner = inner_->lr(k);
  if (k >= warmup_) return inner;
  return inner * (start_factor_ +
                  (1.0 - start_factor_) * static_cast<double>(k) / static_cast<double>(warmup_));
}

ReduceLrOnPlateau::ReduceLrOnPlateau(double base, double factor, std::int64_t patience,
                                     double threshold, std::int64_t cooldown, double min_lr)
    : lr_(base),
      factor_(factor),
      threshold_(threshold),
      min_lr_(min_lr),
      patience_(patience),
      cooldown_(cooldown),
      best_(std::numeric_limits<double>::infinity()) {
  check_base(base, "ReduceLrOnPlateau");
  CUTRAIN_CHECK(std::isfinite(factor) && factor > 0 && factor < 1,
                "ReduceLrOnPlateau: factor = ", factor, " is invalid; valid: (0, 1)");
  CUTRAIN_CHECK(patience >= 0 && cooldown >= 0, "ReduceLrOnPlateau: patience (", patience,
                ") and cooldown (", cooldown, ") must be >= 0");
  CUTRAIN_CHECK(std::isfinite(threshold) && threshold >= 0,
                "ReduceLrOnPlateau: threshold = ", threshold,
                " is invalid; valid: finite and >= 0");
  check_base(min_lr, "ReduceLrOnPlateau (min_lr)");
}

void ReduceLrOnPlateau::observe(double metric) {
  CUTRAIN_CHECK(!std::isnan(metric), "ReduceLrOnPlateau: the observed metric is NaN");
  if (metric < best_ * (1.0 - threshold_)) {
    best_ = metric;
    bad_ = 0;
  } else {
    ++bad_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_ = 0;
  }
  if (bad_ > patience_) {
    const double reduced = std::max(lr_ * factor_, min_lr_);
    if (lr_ - reduced > 1e-8) lr_ = reduced;  // PyTorch ignores changes below its eps of 1e-8
    cooldown_left_ = cooldown_;
    bad_ = 0;
  }
}

namespace {

std::string exact(double v) {               // Note [numbers in files]
  return cutrain::detail::format_g(v, 17);  // round-trips every double, inf included
}

template <class T>
T state_value(const LrSchedule::State& s, const std::string& key, const char* who) {
  const auto it = s.find(key);
  CUTRAIN_CHECK(it != s.end(), who, ": the saved schedule state has no '", key, "'");
  const std::string& text = it->second;
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  CUTRAIN_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(), who,
                ": saved schedule state '", key, "' = '", text, "' is not a number");
  return v;
}

}  // namespace

LrSchedule::State ReduceLrOnPlateau::state() const {
  return {{"lr", exact(lr_)},
          {"best", exact(best_)},
          {"bad", std::to_string(bad_)},
          {"cooldown_left", std::to_string(cooldown_left_)}};
}

void ReduceLrOnPlateau::load_state(const State& s, bool apply) {
  const char* who = "ReduceLrOnPlateau";
  const auto lr = state_value<double>(s, "lr", who);
  const auto best = state_value<double>(s, "best", who);
  const auto bad = state_value<std::int64_t>(s, "bad", who);
  const auto cooldown_left = state_value<std::int64_t>(s, "cooldown_left", who);
  CUTRAIN_CHECK(std::isfinite(lr) && lr >= 0 && !std::isnan(best) && bad >= 0 && cooldown_left >= 0,
                who, ": saved schedule state out of range (lr ", lr, ", best ", best, ", bad ", bad,
                ", cooldown_left ", cooldown_left, ")");
  if (!apply) return;
  lr_ = lr;
  best_ = best;
  bad_ = bad;
  cooldown_left_ = cooldown_left;
}

}  // namespace cutrain::optim
