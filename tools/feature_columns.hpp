#pragma once
// Note [feature columns by name]: the feature columns a file names, against those a model was
// trained on.

#include <string>
#include <vector>

#include "tools/train_data.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

// Note [feature columns by name]: a model reads features by position, so a file whose header
// names the training file's columns in another order (or others) was predicted - or tested -
// silently wrong. `file` (e.g. "--predict-csv 'new.csv'") with header names `have` must name the
// columns `want` in that order; either empty (no header, NumPy, an export from before) passes.
// scikit-learn's feature_names_in_ check refuses the same. A file holding every column of `want`
// in order and others is told which others, and `extra_hint` (what they may be, and the fix).
inline constexpr const char* kPredictExtraHint =
    "a label column? leave it out, or evaluate the file as --test-csv";
inline constexpr const char* kLabelledExtraHint =
    "an identifier the training file lacks? leave it out, or drop it from every file with "
    "--drop-columns";
void check_feature_columns(const std::string& file, const std::vector<std::string>& have,
                           const std::vector<std::string>& want,
                           const char* extra_hint = kPredictExtraHint);

// --model-from / --init-from with training data: the weights' export or checkpoint records the
// feature columns they were trained on (its data spec), and the training file must name the same
// in that order - weights read their inputs by position, so a file whose columns moved trained
// on from the wrong weights without a word. Files without names (no header, NumPy, PyTorch's
// weights) pass.
void check_starting_weights_columns(const Config& c, const TrainData& d);

}  // namespace cutrain::tools
