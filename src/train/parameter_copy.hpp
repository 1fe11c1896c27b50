#pragma once
// Note [16-bit compute copy] (cutrain/precision.hpp): for the span of a training loop, a bf16 /
// fp16 model's training forwards read the parameters its optimizer's fused step rounded - to
// nearest even or stochastically, as the model's rounding says - instead of rounding the fp32
// master themselves. The same values with nearest rounding (the step rounds what the model
// would), a pass over the parameters fewer each forward (the widening replaces the rounding; with
// 16-bit containers it goes), and the only way to stochastic rounding.

#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"
#include "cutrain/precision.hpp"

namespace cutrain::train::detail {

class ParameterCopy {
 public:
  // After anything that writes the parameters before the loop (a broadcast, a resume): the copy
  // starts as the step last applied would have written it (refresh_compute_copy), so a resumed
  // run's is the uninterrupted run's. The stochastic bits come from the model's seed, which
  // checkpoints restore.
  ParameterCopy(nn::Sequential& model, optim::Optimizer& optimizer) : model_(model) {
    if (!is_half(model.precision())) return;
    optimizer.enable_compute_copy(model.parameters(), model.precision(), model.rounding(),
                                  model.seed());
    model.set_parameter_copy(&optimizer.compute_copy());
  }
  ~ParameterCopy() { model_.set_parameter_copy(nullptr); }
  ParameterCopy(const ParameterCopy&) = delete;
  ParameterCopy& operator=(const ParameterCopy&) = delete;

 private:
  nn::Sequential& model_;
};

}  // namespace cutrain::train::detail
