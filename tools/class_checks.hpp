#pragma once
// cutrain-train's checks of class labels: how many classes the files make, and --class-weights.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "cutrain/data/dataset.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

// Labels number the classes, so one implausible label (100000 in a 4-row file) would make that
// many classes - output units, class weights, a confusion matrix of classes^2 - and fail much
// later, or not at all. --max-classes bounds it, naming the file and the label.
// LabelSource: one file's labels, and the flag and path that name it.
struct LabelSource {
  const char* flag;
  const std::string& path;
  const data::Dataset* d;
};
// A UsageError for a training file (the first source) whose labels are all one class, or for a
// file whose largest label makes more than --max-classes classes.
// Then says on stdout which classes have no training sample - Note
// [classes without a training sample]: labels number the outputs, so 1-based labels (as R and
// MATLAB write them; covertype's 1..7) leave class 0's output untrained, and a class only the
// test or validation file has cannot be learnt; both trained and scored without a word. Said,
// not refused: the predictions keep the labels as given.
void check_class_count(const Config& c, std::initializer_list<LabelSource> sources);

// --class-weights: "balanced" (from the training split, after --val-fraction); one non-negative
// number per class, comma-separated, in label order; or name=weight pairs (a class name, or a
// label number), the classes not named keeping weight 1.
std::vector<float> class_weights(const Config& c, const data::Dataset& train,
                                 const std::vector<std::string>& names);

}  // namespace cutrain::tools
