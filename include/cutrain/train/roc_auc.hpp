#pragma once
// The area under the ROC curve of a classifier's outputs, one class against the rest: for class
// c, how often a row of class c scores higher than a row of another class (ties count half) -
// the Mann-Whitney statistic, AUC_c = (R_c - n_c (n_c + 1) / 2) / (n_c (n - n_c)), with R_c the
// sum of the class-c rows' ranks among all rows (tied scores share their mean rank). The score of
// row r for class c is its softmax probability p_rc (in double), so that a row's classes compete
// as sklearn.metrics.roc_auc_score(y, probabilities, multi_class="ovr") has them; with two
// classes, AUC_1 is the binary AUC of p_r1 (roc_auc_score(y, p1)) and AUC_0 the same number, its
// mirror image. A class with no row, or with
// every row, has no AUC (NaN) and the macro average leaves it out (scikit-learn refuses such
// data). Threshold-free where accuracy is not: it says how well the model ranks a rare class
// even when the argmax never picks it.

#include <cstdint>
#include <span>
#include <vector>

namespace cutrain::train {

/// One-vs-rest ROC AUC per class and their macro average.
struct RocAuc {
  std::vector<double> per_class;  ///< NaN for a class without rows or without other rows
  double macro = 0;               ///< the mean over the classes that have one (NaN if none)
};

/// outputs: [rows, classes] logits row-major (Trainer::predict's), labels: [rows] in
/// [0, classes). Throws cutrain::Error for mismatched sizes, a label out of range, or a NaN logit.
RocAuc roc_auc(std::span<const float> outputs, std::int32_t classes,
               std::span<const std::int32_t> labels);

}  // namespace cutrain::train
