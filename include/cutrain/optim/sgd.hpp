#pragma once
// SGD with momentum, dampening, Nesterov momentum, weight decay and maximize — torch.optim.SGD.
//
//   g  <- -g if maximize
//   g  <- g + weight_decay * p
//   if momentum != 0:
//     b <- g                               on the first step (PyTorch: no dampening there)
//     b <- momentum * b + (1 - dampening) * g   afterwards
//     g <- g + momentum * b   if nesterov, else g <- b
//   p  <- p - lr * g
//
// PyTorch's momentum form (v <- mu v + g; p <- p - lr v) differs from the Deep Learning book's
// (v <- alpha v - eps g; p <- p + v): they agree for a constant lr but not when lr changes, and
// users compare against PyTorch, so cutrain follows PyTorch. Learning-rate decay comes from an
// LrSchedule (schedule.hpp) setting lr() before each step.

#include "cutrain/optim/optimizer.hpp"

namespace cutrain::optim {

/// torch.optim.SGD's hyperparameters (momentum, dampening, Nesterov, weight decay).
struct SgdOptions {
  float lr = 0.01F;           ///< torch.optim.SGD's lr
  float momentum = 0.0F;      ///< torch.optim.SGD's momentum
  float dampening = 0.0F;     ///< torch.optim.SGD's dampening
  float weight_decay = 0.0F;  ///< torch.optim.SGD's weight_decay
  bool nesterov = false;      ///< torch.optim.SGD's nesterov
  bool maximize = false;      ///< torch.optim.SGD's maximize
};

/// SGD with momentum or Nesterov (torch.optim.SGD) as one fused launch per step.
class Sgd final : public Optimizer {
 public:
  /// Allocates the momentum buffer (when momentum != 0) like `params`. Throws on bad options.
  Sgd(const Arena& params, const SgdOptions& options);
  const SgdOptions& options() const { return options_; }  ///< as constructed

 private:
  void run(const detail::StepLaunch& launch) override;
  SgdOptions options_;
  Arena* buffer_ = nullptr;
};

}  // namespace cutrain::optim
