#pragma once
// cutrain-train's runs that train nothing: the learning-rate range test (--find-lr) and
// prediction from a model file alone (--model-from with --predict-csv and no training data).

#include <string>
#include <vector>

#include "cutrain/data/dataset.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

// --find-lr: the range test on the training split, its curve on stdout (every 5th point) and in
// --report, and the suggestion; the model is left as it was. The loss is the one training would
// use (label smoothing, class weights). Returns the exit status.
int run_find_lr(const Config& c, nn::Sequential& model, optim::Optimizer& opt,
                const data::Dataset& train, const std::vector<float>& class_weights,
                const std::string& device, const std::string& command_line);

// --model-from M --predict-csv NEW --predictions OUT with no training data (Note [data spec in
// exports]): the file's input preparation and names; nothing trained or evaluated. Flags that
// would need training data or a training run are refused. Returns the exit status.
int run_predict_only(const Config& c);

// --describe FILE: the model a file holds (layers and parameter count), the data it expects (the
// data spec: features, one-hot columns, fill values, standardization, classes or targets) and,
// for a checkpoint, how far it was trained and by which command. Returns the exit status.
int run_describe(const std::string& path);

}  // namespace cutrain::tools
