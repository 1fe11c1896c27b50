#pragma once
// Adam, AdamW and AMSGrad — torch.optim.Adam / torch.optim.AdamW.
//
//   g  <- -g if maximize
//   Adam:  g <- g + weight_decay * p              (L2 penalty in the gradient)
//   AdamW: p <- p * (1 - lr * weight_decay)       (decoupled decay, before the update)
//   m  <- beta1 * m + (1 - beta1) * g                          ("exp_avg")
//   v  <- beta2 * v + (1 - beta2) * g * g                      ("exp_avg_sq")
//   amsgrad: vmax <- max(vmax, v), and vmax replaces v below   ("max_exp_avg_sq")
//   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t                       (t: this step's number, from 1)
//   p  <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
//
// eps is added to the bias-corrected sqrt(v), outside the square root, as in PyTorch (and in
// the Deep Learning book's Algorithm 8.7). bc1 and bc2 are computed in double from the device
// step counter, as PyTorch computes them in Python floats.

#include "cutrain/optim/optimizer.hpp"

namespace cutrain::optim {

/// torch.optim.Adam / AdamW hyperparameters, amsgrad included.
struct AdamOptions {
  float lr = 1e-3F;           ///< torch.optim.Adam / AdamW's lr
  float beta1 = 0.9F;         ///< betas[0] of torch.optim.Adam / AdamW
  float beta2 = 0.999F;       ///< betas[1] of torch.optim.Adam / AdamW
  float eps = 1e-8F;          ///< torch.optim.Adam / AdamW's eps
  float weight_decay = 0.0F;  ///< Adam: L2; AdamW: decoupled
  bool amsgrad = false;       ///< torch.optim.Adam / AdamW's amsgrad
  bool maximize = false;      ///< torch.optim.Adam / AdamW's maximize
};

/// Adam, AdamW and AMSGrad (torch.optim semantics) as one fused launch per step over the whole
/// arena.
class Adam : public Optimizer {
 public:
  /// Adam (L2 weight decay) for the arena `params`; options checked here.
  Adam(const Arena& params, const AdamOptions& options);
  const AdamOptions& options() const { return options_; }  ///< as constructed

 protected:
  /// decoupled: AdamW's weight decay (lr x weight_decay x p subtracted), else Adam's L2.
  Adam(const Arena& params, const AdamOptions& options, bool decoupled);

 private:
  void run(const detail::StepLaunch& launch) override;
  AdamOptions options_;
  bool decoupled_;
  Arena* exp_avg_ = nullptr;
  Arena* exp_avg_sq_ = nullptr;
  Arena* max_exp_avg_sq_ = nullptr;
};

/// AdamW: Adam with decoupled weight decay (PyTorch's default weight_decay for AdamW is 1e-2).
class AdamW final : public Adam {
 public:
  /// torch.optim.AdamW's defaults (weight_decay 1e-2).
  static AdamOptions defaults() {
    AdamOptions o;
    o.weight_decay = 1e-2F;
    return o;
  }
  /// AdamW for the arena `params`; options checked here.
  AdamW(const Arena& params, const AdamOptions& options);
};

}  // namespace cutrain::optim
