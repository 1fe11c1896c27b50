#pragma once
// Finite-difference gradient checks: what torch.autograd.gradcheck is to a custom autograd
// Function, check_gradients is to a custom nn::Layer - its backward() against central
// differences of its forward(), inside a model.
//
// The scalar checked is L(x, theta) = sum_ij w_ij y_ij(x, theta), with y the model's output for
// a random input x ~ N(0, 1) of `batch` rows and fixed random weights w ~ N(0, 1): backward with
// dy = w gives dL/dtheta (the gradient arena) and dL/dx, and each is compared, coordinate by
// coordinate, with
//     numeric = (L(theta + h e_i) - L(theta - h e_i)) / (h+ + h-),
// where h+ and h- are the steps the float parameter actually took (fl(theta + h) - theta, ...)
// and L is summed in double. A coordinate passes when |analytic - numeric| <= atol + rtol
// |numeric|.
//
// Kinks: at a ReLU-like kink the central difference averages two one-sided slopes, so it differs
// from either analytic side by half their gap. A coordinate that fails is counted as a kink and
// skipped, not failed, when its one-sided differences (L(theta + h) - L(theta)) / h+ and
// (L(theta) - L(theta - h)) / h- differ by at least its own error, or when the error vanishes at
// a step 8 times smaller (kinks on both sides of the step). A wrong backward in a smooth region
// gives one-sided differences that agree (to h times the curvature) and the same error at any
// step, so it fails. The check passes with no failure and at most a quarter of the tried
// coordinates at kinks.
//
// The model runs in its current mode: in training mode every forward draws the same Dropout masks
// (the forward counters are held, so the masks are part of the function checked) and BatchNorm
// uses batch statistics. The model is left as it was found - parameters, gradients, buffers
// (BatchNorm's running statistics) and forward counters - even when the check throws.
// Runs on the model's device; on a GPU each coordinate costs two forwards and a few small copies.

#include <cstdint>
#include <string>
#include <vector>

#include "cutrain/nn/sequential.hpp"

namespace cutrain::nn {

/// Step size, tolerances and coverage of check_gradients.
struct GradCheckOptions {
  std::int64_t batch = 4;  ///< rows of the random input
  std::uint64_t seed = 0;  ///< x and w
  float step = 1e-2F;      ///< h: float forwards need a large one (rounding error ~ eps / h)
  double rtol = 2e-2;      ///< relative tolerance
  double atol = 1e-3;      ///< absolute tolerance
  /// Coordinates tried per parameter tensor (evenly spaced; every one when the tensor is
  /// smaller), and of the input when check_input; 0: every coordinate.
  std::size_t per_tensor = 25;
  bool check_input = true;  ///< dL/dx too (Sequential::backward's dx)
};

/// What check_gradients found: the worst coordinate and every failure, named.
struct GradCheckResult {
  bool passed = false;      ///< every compared coordinate within tolerance
  std::size_t checked = 0;  ///< coordinates compared (kinks excluded)
  std::size_t kinks = 0;    ///< skipped as kinks (see above)
  /// max over compared coordinates of |analytic - numeric| / (atol + rtol |numeric|): <= 1 passes.
  double max_error_ratio = 0;
  /// The worst coordinate, e.g. "layers.2.weight[17]: analytic 0.4102 vs numeric 0.2051".
  std::string worst;
  std::vector<std::string> failures;  ///< every failing coordinate, in the same form, at most 20
};

/// Throws cutrain::Error for an unbuilt model, bad options, or a forward that is not a function
/// of its inputs (two identical forwards giving different outputs).
GradCheckResult check_gradients(Sequential& model, const GradCheckOptions& options = {});

}  // namespace cutrain::nn
