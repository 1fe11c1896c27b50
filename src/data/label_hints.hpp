#pragma once
// What a label that is no class number most likely is, for the readers' errors (CSV and NumPy
// alike): -1 is the negative class of the -1/+1 convention (SVMs, scikit-learn's
// make_classification with flip_y, LIBSVM files), which classes numbered from 0 cannot hold.

#include <string>

namespace cutrain::data::detail {

inline std::string label_hint(double label) {
  return label == -1.0 ? " (labels -1 and 1, an SVM's? map them to the classes 0 and 1: "
                         "(y + 1) / 2, numpy's (Y > 0).astype(int))"
                       : "";
}

}  // namespace cutrain::data::detail
