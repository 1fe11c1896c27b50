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
// cutrain::Error, naming the file, for a malformed one. load_train_data = read_train_data, then
// fit_preprocessing.
TrainData load_train_data(const Config& c);

// --csv-separator, --csv-decimal and --csv-header: how every CSV file the run reads is written.
data::CsvOptions csv_format(const Config& c);
// --drop-columns' names.
std::vector<std::string> drop_columns(const Config& c);

// The files as read (Fashion-MNIST's pixels / 255), --train-subset and the --val-fraction split:
// nothing fitted to the data yet (--folds fits each fold's training part on its own).
TrainData read_train_data(const Config& c);

// Fits --impute, --standardize and balanced --class-weights on d.train alone, applies them to
// every split d holds, and records them in d.spec; sets d.outputs.
void fit_preprocessing(TrainData& d, const Config& c);

// What the run trains on, on stdout: the splits' sizes, the augmentation, imputation, one-hot
// columns and class weights.
void print_data_summary(const Config& c, const TrainData& d, Device device);

}  // namespace cutrain::tools
