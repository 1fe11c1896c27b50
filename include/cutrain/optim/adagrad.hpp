#pragma once
// AdaGrad — torch.optim.Adagrad (dense gradients).
//
//   g     <- -g if maximize
//   g     <- g + weight_decay * p
//   clr   =  lr / (1 + (t - 1) * lr_decay)          (t: this step's number, from 1)
//   sum   <- sum + g * g                              (sum starts at initial_accumulator_value)
//   p     <- p - clr * g / (sqrt(sum) + eps)
//
// PyTorch puts eps outside the square root (the Deep Learning book's Algorithm 8.4 puts its
// delta inside it); cutrain follows PyTorch.

#include "cutrain/optim/optimizer.hpp"

namespace cutrain::optim {

/// torch.optim.Adagrad's hyperparameters.
struct AdagradOptions {
  float lr = 0.01F;                        ///< torch.optim.Adagrad's lr
  float lr_decay = 0.0F;                   ///< torch.optim.Adagrad's lr_decay
  float weight_decay = 0.0F;               ///< torch.optim.Adagrad's weight_decay
  float initial_accumulator_value = 0.0F;  ///< torch.optim.Adagrad's initial_accumulator_value
  float eps = 1e-10F;                      ///< torch.optim.Adagrad's eps
  bool maximize = false;                   ///< torch.optim.Adagrad's maximize
};

/// AdaGrad (torch.optim.Adagrad) as one fused launch per step.
class Adagrad final : public Optimizer {
 public:
  /// An optimizer for the arena `params` (its layout and device); options checked here.
  Adagrad(const Arena& params, const AdagradOptions& options);
  const AdagradOptions& options() const { return options_; }  ///< as constructed

 private:
  void run(const detail::StepLaunch& launch) override;
  AdagradOptions options_;
  Arena* sum_ = nullptr;
};

}  // namespace cutrain::optim
