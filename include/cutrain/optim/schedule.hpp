#pragma once
// Learning-rate schedules: lr(k) for iteration (or epoch) k = 0, 1, 2, ...; set it on the
// optimizer before step k (opt.set_lr(schedule.lr(k))). Closed forms of torch.optim.lr_scheduler
// (whose chainable forms give the same values), checked against PyTorch in
// tests/optim/schedule_test.cpp. All arithmetic is in double.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cutrain::optim {

/// A learning-rate schedule evaluated per iteration (torch.optim.lr_scheduler's formulas).
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(std::int64_t k) const = 0;  ///< the learning rate for step (or epoch) k
  /// For metric-driven schedules (ReduceLrOnPlateau): report the epoch's validation metric.
  virtual void observe(double /*metric*/) {}

  /// What observe() has changed, for checkpoints: the trainer saves it as "schedule.<key>"
  /// metadata and restores it on resume, so a resumed run continues the same schedule. Closed
  /// forms of k have none.
  using State = std::map<std::string, std::string>;
  virtual State state() const { return {}; }  ///< see LrSchedule::State
  /// Restores state(). A missing or malformed entry throws cutrain::Error naming it, and nothing
  /// changes; with apply = false it only checks.
  virtual void load_state(const State& /*state*/, bool /*apply*/ = true) {}
};

/// lr(k) = base
class ConstantLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  explicit ConstantLr(double base);
  double lr(std::int64_t) const override { return base_; }  ///< the current value

 private:
  double base_;
};

/// StepLR: lr(k) = base * gamma^floor(k / step_size)
class StepLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  StepLr(double base, std::int64_t step_size, double gamma);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k

 private:
  double base_, gamma_;
  std::int64_t step_size_;
};

/// MultiStepLR: lr(k) = base * gamma^(number of milestones <= k)
class MultiStepLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  MultiStepLr(double base, std::vector<std::int64_t> milestones, double gamma);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k

 private:
  double base_, gamma_;
  std::vector<std::int64_t> milestones_;
};

/// ExponentialLR: lr(k) = base * gamma^k
class ExponentialLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  ExponentialLr(double base, double gamma);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k

 private:
  double base_, gamma_;
};

/// Linear decay to a floor (Deep Learning book eq. 8.14): with a = k / tau,
///   lr(k) = (1 - a) * base + a * final   for k < tau,   final afterwards.
class LinearDecayLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  LinearDecayLr(double base, double final_lr, std::int64_t tau);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k

 private:
  double base_, final_;
  std::int64_t tau_;
};

/// CosineAnnealingLR: lr(k) = eta_min + (base - eta_min) * (1 + cos(pi k / t_max)) / 2.
/// With restarts (CosineAnnealingWarmRestarts): the period starts at t_0 and is multiplied by
/// t_mult after each restart; k counts within the current period.
class CosineLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  CosineLr(double base, std::int64_t t_max, double eta_min = 0.0);
  /// CosineAnnealingWarmRestarts(T_0 = t_0, T_mult = t_mult, eta_min).
  static CosineLr with_restarts(double base, std::int64_t t_0, std::int64_t t_mult,
                                double eta_min = 0.0);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k

 private:
  double base_, eta_min_;
  std::int64_t t_max_;
  bool restarts_ = false;
  std::int64_t t_mult_ = 1;
};

/// OneCycleLR (Smith & Topin, "Super-convergence"), the learning-rate part (cycle_momentum =
/// False): with initial = max_lr / div_factor and final = initial / final_div_factor, over
/// total_steps steps, phases ending at step e_i (PyTorch's end_step):
///   two phases:   initial -> max_lr until e_1 = pct_start * total - 1, then -> final at total - 1
///   three_phase:  initial -> max_lr until e_1, back -> initial until e_2 = 2 pct_start total - 2,
///                 then -> final at total - 1
/// each annealed by cosine, start + (end - start) (1 - cos(pi p)) / 2, or linearly, with p the
/// fraction of the phase done. Steps past the last hold `final` (PyTorch raises there).
class OneCycleLr final : public LrSchedule {
 public:
  /// anneal_strategy "cos" or "linear".
  enum class Anneal { kCos, kLinear };  ///< anneal_strategy "cos" or "linear"
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  OneCycleLr(double max_lr, std::int64_t total_steps, double pct_start = 0.3,
             Anneal anneal = Anneal::kCos, double div_factor = 25.0, double final_div_factor = 1e4,
             bool three_phase = false);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k

 private:
  struct Phase {
    double end_step, start_lr, end_lr;
  };
  std::vector<Phase> phases_;
  Anneal anneal_;
  std::int64_t total_;
};

/// Linear warmup composed with any schedule: for k < warmup the inner lr is multiplied by
/// start_factor + (1 - start_factor) * k / warmup (PyTorch's LinearLR chained multiplicatively).
class WarmupLr final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  WarmupLr(std::unique_ptr<LrSchedule> inner, std::int64_t warmup, double start_factor = 0.0);
  double lr(std::int64_t k) const override;  ///< the learning rate for step (or epoch) k
  void observe(double metric) override { inner_->observe(metric); }
  State state() const override { return inner_->state(); }  ///< see LrSchedule::State
  void load_state(const State& s, bool apply = true) override { inner_->load_state(s, apply); }

 private:
  std::unique_ptr<LrSchedule> inner_;
  std::int64_t warmup_;
  double start_factor_;
};

/// ReduceLROnPlateau (mode "min", relative threshold): after more than `patience` observations
/// without an improvement below best * (1 - threshold), lr <- max(lr * factor, min_lr), then
/// `cooldown` observations pass before counting again. lr(k) is the current value.
class ReduceLrOnPlateau final : public LrSchedule {
 public:
  /// The parameters of the formula above (torch.optim.lr_scheduler's names).
  ReduceLrOnPlateau(double base, double factor = 0.1, std::int64_t patience = 10,
                    double threshold = 1e-4, std::int64_t cooldown = 0, double min_lr = 0.0);
  double lr(std::int64_t) const override { return lr_; }  ///< the current value
  void observe(double metric) override;
  /// "lr", "best", "bad", "cooldown_left"
  State state() const override;  ///< see LrSchedule::State
  void load_state(const State& s, bool apply = true) override;

 private:
  double lr_, factor_, threshold_, min_lr_;
  std::int64_t patience_, cooldown_;
  double best_;
  std::int64_t bad_ = 0, cooldown_left_ = 0;
};

}  // namespace cutrain::optim
