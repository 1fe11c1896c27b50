#pragma once
// cutrain-train --folds K: k-fold cross-validation of the configured training run.

#include <cstdint>
#include <string>
#include <vector>

#include "cutrain/cutrain.hpp"
#include "tools/train_data.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

// Note [cross-validation]: K models, each trained as the flags say on K - 1 folds of the raw
// training data (data::fold_split; --stratify keeps class shares) and scored on the remaining
// fold. Preprocessing that learns from data (--impute, --standardize, balanced --class-weights)
// is fitted on each fold's training part alone, so the held-out fold stays unseen, as
// scikit-learn's cross_val_score with a Pipeline does. Every fold starts from the same seed. The
// test set is not touched; no model is kept. Prints each fold's validation figures (loss, and
// accuracy, or for regression R^2 and MAE averaged over the targets), their mean
// and standard deviation (over folds, numpy's std: ddof 0) and writes them to --report with
// each fold's rows ("val_rows": 0-based data rows of the training file, after --train-subset),
// so that any fold can be retrained alone as an ordinary run. --predictions writes the
// out-of-fold predictions (scikit-learn's cross_val_predict): every training row, in file order,
// predicted by the model its fold held it out from.
int run_cross_validation(const Config& c, const TrainData& raw, Device device,
                         const std::vector<std::int64_t>& hidden, const std::string& command_line);

}  // namespace cutrain::tools
