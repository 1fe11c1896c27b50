#pragma once
// Regression results by target column, as scikit-learn's metrics compute them per output
// (multioutput="raw_values"): for target j over n rows with predictions p and truths t,
//   mse_j = sum_r (p_rj - t_rj)^2 / n,   mae_j = sum_r |p_rj - t_rj| / n,
//   r2_j  = 1 - sum_r (p_rj - t_rj)^2 / sum_r (t_rj - mean_r t_rj)^2,
// with r2_j = 1 for perfect predictions of a constant target and 0 for imperfect ones
// (r2_score's force_finite). Sums in double.

#include <cstdint>
#include <span>
#include <vector>

namespace cutrain::train {

/// One regression target's MSE, MAE and R^2.
struct TargetMetrics {
  double mse = 0;  ///< mean squared error (above)
  double mae = 0;  ///< mean absolute error
  double r2 = 0;   ///< the coefficient of determination
};

/// outputs and targets: [rows, width] row-major (Trainer::predict's outputs, Dataset::targets).
/// Throws cutrain::Error for mismatched sizes or no rows.
std::vector<TargetMetrics> regression_metrics(std::span<const float> outputs,
                                              std::span<const float> targets, std::int64_t width);

}  // namespace cutrain::train
