#pragma once
// RMSProp — torch.optim.RMSprop, plus Nesterov momentum as a documented extension.
//
//   g    <- -g if maximize
//   g    <- g + weight_decay * p
//   sq   <- alpha * sq + (1 - alpha) * g * g                 ("square_avg")
//   if centered: ga <- alpha * ga + (1 - alpha) * g         ("grad_avg")
//                avg = sqrt(sq - ga * ga) + eps
//   else:        avg = sqrt(sq) + eps
//   if momentum > 0:  b <- momentum * b + g / avg;  p <- p - lr * b      ("momentum_buffer")
//   else:             p <- p - lr * g / avg
//
// eps is added outside the square root (PyTorch), not inside (Deep Learning book, Alg. 8.5).
//
// nesterov = true (not in PyTorch) is RMSProp with Nesterov momentum, the Deep Learning book's
// Algorithm 8.6, written like PyTorch's Nesterov SGD so the stored parameters are the look-ahead
// point theta + alpha v at which the next gradient is taken. With s = g / avg:
//   b <- momentum * b + s;   p <- p - lr * (s + momentum * b)
// (the book's v <- alpha v - eps s, theta <- theta + v, with v = -lr b and p = theta + alpha v).
// It needs momentum > 0 and, like PyTorch's RMSprop, keeps eps outside the square root.

#include "cutrain/optim/optimizer.hpp"

namespace cutrain::optim {

/// torch.optim.RMSprop's hyperparameters (centered, momentum).
struct RmspropOptions {
  float lr = 0.01F;           ///< torch.optim.RMSprop's lr
  float alpha = 0.99F;        ///< torch.optim.RMSprop's alpha
  float eps = 1e-8F;          ///< torch.optim.RMSprop's eps
  float weight_decay = 0.0F;  ///< torch.optim.RMSprop's weight_decay
  float momentum = 0.0F;      ///< torch.optim.RMSprop's momentum
  bool centered = false;      ///< torch.optim.RMSprop's centered
  bool nesterov = false;      ///< extension: Deep Learning book Algorithm 8.6
  bool maximize = false;      ///< torch.optim.RMSprop's maximize
};

/// RMSProp, plain, centered or with momentum (torch.optim.RMSprop), as one fused launch per step.
class Rmsprop final : public Optimizer {
 public:
  /// An optimizer for the arena `params`; options checked here.
  Rmsprop(const Arena& params, const RmspropOptions& options);
  const RmspropOptions& options() const { return options_; }  ///< as constructed

 private:
  void run(const detail::StepLaunch& launch) override;
  RmspropOptions options_;
  Arena* square_avg_ = nullptr;
  Arena* grad_avg_ = nullptr;
  Arena* buffer_ = nullptr;
};

}  // namespace cutrain::optim
