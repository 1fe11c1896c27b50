// include/cutrain/train/roc_auc.hpp.
#include "cutrain/train/roc_auc.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "cutrain/error.hpp"

namespace cutrain::train {

RocAuc roc_auc(std::span<const float> outputs, std::int32_t classes,
               std::span<const std::int32_t> labels) {
  CUTRAIN_CHECK(classes >= 2, "roc_auc: ", classes, " classes; needs at least 2");
  const auto c_count = static_cast<std::size_t>(classes);
  const std::size_t rows = labels.size();
  CUTRAIN_CHECK(outputs.size() == rows * c_count, "roc_auc: ", outputs.size(), " outputs for ",
                rows, " labels x ", classes, " classes");
  // Softmax probabilities in double, row by row (max-shifted: any logit size).
  std::vector<double> p(outputs.size());
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int32_t label = labels[r];
    CUTRAIN_CHECK(label >= 0 && label < classes, "roc_auc: label ", label, " of row ", r,
                  " is outside [0, ", classes, ")");
    const float* x = outputs.data() + r * c_count;
    double m = x[0], s = 0.0;
    for (std::size_t c = 0; c < c_count; ++c) {
      CUTRAIN_CHECK(std::isfinite(x[c]), "roc_auc: row ", r, " has a non-finite output (", x[c],
                    "): a diverged model has no ROC curve");
      m = std::max(m, static_cast<double>(x[c]));
    }
    for (std::size_t c = 0; c < c_count; ++c) s += std::exp(static_cast<double>(x[c]) - m);
    for (std::size_t c = 0; c < c_count; ++c)
      p[r * c_count + c] = std::exp(static_cast<double>(x[c]) - m) / s;
  }
  RocAuc out;
  out.per_class.assign(c_count, std::numeric_limits<double>::quiet_NaN());
  std::vector<std::size_t> order(rows);
  double sum = 0.0;
  int counted = 0;
  for (std::size_t c = 0; c < c_count; ++c) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return p[a * c_count + c] < p[b * c_count + c];
    });
    double rank_sum = 0.0;  // of class c's rows, ranks 1-based, ties sharing their mean
    std::int64_t positives = 0;
    for (std::size_t i = 0; i < rows;) {
      // The group of ties starting at i: at least row i itself, so the loop always advances
      // (a comparison with NaN is false; finite inputs are checked above, this keeps it total).
      std::size_t j = i + 1;
      while (j < rows && p[order[j] * c_count + c] == p[order[i] * c_count + c]) ++j;
      const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
      for (std::size_t k = i; k < j; ++k)
        if (labels[order[k]] == static_cast<std::int32_t>(c)) {
          rank_sum += mean_rank;
          ++positives;
        }
      i = j;
    }
    const auto n_pos = static_cast<double>(positives);
    const double n_neg = static_cast<double>(rows) - n_pos;
    if (positives == 0 || n_neg == 0) continue;
    out.per_class[c] = (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg);
    sum += out.per_class[c];
    ++counted;
  }
  out.macro = counted > 0 ? sum / counted : std::numeric_limits<double>::quiet_NaN();
  return out;
}

}  // namespace cutrain::train
