#pragma once
// cutrain-train's data: Fashion-MNIST's IDX files (--data, pixels / 255) or any CSV pair
// (--train-csv / --test-csv: a class-label column, or with --regression a float target), then
// --train-subset, the --val-fraction split and --standardize, in that order.

#include <cstdint>
#include <string>
#include <vector>

#include "cutrain/data.hpp"
#include "cutrain/train/data_spec.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

struct TrainData {
  data::Dataset train, val, test;
  std::int64_t outputs = 0;               // the model's output width: classes, or the target width
  bool regression = false;                // float targets: mean squared error, no accuracy
  std::vector<std::string> target_names;  // regression targets named by --target, in order
  std::vector<std::string> class_names;   // by label where known (Fashion-MNIST's), else empty
  data::Dataset predict;                  // --predict-csv: rows to predict (features only)
  std::vector<float> class_weights;       // --class-weights, by label; empty: none
  std::int64_t imputed = 0;               // --impute: missing values filled, over every split
  // What the data went through and what the outputs mean, for exports and checkpoints
  // (Note [data spec in exports]).
  train::DataSpec spec;
};

// A UsageError for bad flags (a missing --data directory, an empty training split); a
// cutrain::Error, naming the file, for a malformed one.
TrainData load_train_data(const Config& c);

}  // namespace cutrain::tools
