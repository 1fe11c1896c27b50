#include "cutrain/train/regression_metrics.hpp"

#include <cmath>

#include "cutrain/error.hpp"

namespace cutrain::train {

std::vector<TargetMetrics> regression_metrics(std::span<const float> outputs,
                                              std::span<const float> targets, std::int64_t width) {
  CUTRAIN_CHECK(width >= 1, "regression_metrics: width = ", width, " must be >= 1");
  const auto w = static_cast<std::size_t>(width);
  CUTRAIN_CHECK(outputs.size() == targets.size() && !targets.empty() && targets.size() % w == 0,
                "regression_metrics: ", outputs.size(), " outputs and ", targets.size(),
                " targets are not the same non-empty number of rows x ", width);
  const std::size_t rows = targets.size() / w;
  std::vector<TargetMetrics> out(w);
  for (std::size_t j = 0; j < w; ++j) {
    double mean = 0;
    for (std::size_t r = 0; r < rows; ++r) mean += targets[r * w + j];
    mean /= static_cast<double>(rows);
    double sse = 0, sae = 0, sst = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const double t = targets[r * w + j];
      const double e = static_cast<double>(outputs[r * w + j]) - t;
      sse += e * e;
      sae += std::fabs(e);
      sst += (t - mean) * (t - mean);
    }
    const auto n = static_cast<double>(rows);
    out[j] = {sse / n, sae / n, sst > 0 ? 1.0 - sse / sst : (sse == 0 ? 1.0 : 0.0)};
  }
  return out;
}

}  // namespace cutrain::train
