#pragma once
// Classification results by class: the predicted class of a row of logits and the confusion
// matrix of a data set, with per-class recall (each class's accuracy), precision and F1.
//
// The predicted class is the first largest logit (ties go to the lowest class; comparisons with
// NaN are false, Note [evaluation on the device]), the rule Trainer::evaluate's accuracy counts
// with, so a confusion matrix's trace over its total is that accuracy. Per class c, with
// counts[t][p] the rows of true class t predicted as p:
//   recall_c = counts[c][c] / sum_p counts[c][p]      (rows of class c)
//   precision_c = counts[c][c] / sum_t counts[t][c]   (rows predicted as c)
//   f1_c = 2 precision_c recall_c / (precision_c + recall_c)
// with 0 for a ratio with nothing to count (scikit-learn's zero_division=0), and the macro F1
// averaging f1_c over the classes that occur as a label or a prediction (as
// sklearn.metrics.f1_score(average="macro") does).

#include <cstdint>
#include <span>
#include <vector>

namespace cutrain::train {

/// The class `logits` predicts (logits.size() >= 1).
std::int32_t predicted_class(std::span<const float> logits);

/// Counts of (true class, predicted class), with per-class recall, precision and F1.
struct ConfusionMatrix {
  std::int32_t classes = 0;          ///< C
  std::vector<std::int64_t> counts;  ///< [true][predicted], row-major classes x classes

  std::int64_t at(std::int32_t truth,
                  std::int32_t predicted) const;   ///< the count of (truth, predicted)
  std::int64_t total() const;                      ///< rows counted
  std::int64_t rows_of(std::int32_t truth) const;  ///< support: rows whose label is `truth`
  std::int64_t predicted_as(std::int32_t predicted) const;  ///< rows predicted as `predicted`
  double accuracy() const;                                  ///< trace / total (0 when empty)
  std::vector<double> recall() const;                       ///< per class; each class's accuracy
  std::vector<double> precision()
      const;  ///< per class: correct / predicted as it (0 if never predicted: zero_division=0)
  std::vector<double> f1() const;  ///< per class: harmonic mean of precision and recall
  double macro_f1() const;         ///< the mean of f1() over the classes that have one
};

/// outputs: [rows, classes] logits row-major (Trainer::predict's), labels: [rows] in [0, classes).
/// Throws cutrain::Error for mismatched sizes or a label out of range.
ConfusionMatrix confusion_matrix(std::span<const float> outputs, std::int32_t classes,
                                 std::span<const std::int32_t> labels);

}  // namespace cutrain::train
