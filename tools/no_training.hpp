#pragma once
// cutrain-train's runs that train nothing: the learning-rate range test (--find-lr), prediction
// from a model file alone (--model-from with --predict-csv and no training data) and its
// conversion to ONNX (--model-from with --export-onnx).

#include <string>
#include <vector>

#include "cutrain/data/dataset.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"
#include "cutrain/train/onnx.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

// --find-lr: the range test on the training split, its curve on stdout (every 5th point) and in
// --report, and the suggestion; the model is left as it was. The loss is the one training would
// use (label smoothing, class weights). Returns the exit status.
int run_find_lr(const Config& c, nn::Sequential& model, optim::Optimizer& opt,
                const data::Dataset& train, const std::vector<float>& class_weights,
                const std::string& device, const std::string& command_line);

// --model-from M --predict-csv NEW --predictions OUT with no training data (Note [data spec in
// exports]): the file's input preparation and names; nothing trained or evaluated. Only the
// flags of prediction (and of an --export-onnx beside it) are taken; any other is refused,
// naming it (Note [flags without training]). Returns the exit status.
int run_predict_only(const Config& c);

// --model-from FILE --export-onnx OUT and no training data: converts the file's model (and its
// data preparation and class names) to ONNX. Only the ONNX flags are taken (Note [flags without
// training]); `predicted`: after run_predict_only, which checked the flags of both.
int run_export_only(const Config& c, bool predicted = false);

// The ONNX export's options for this run: the data spec unless --onnx-no-prep, the class names,
// --onnx-softmax.
train::OnnxOptions onnx_options(const Config& c, const train::DataSpec& spec,
                                const std::vector<std::string>& class_names);

// --describe FILE: the model a file holds (layers and parameter count), the data it expects (the
// data spec: features, one-hot columns, fill values, standardization, classes or targets) and,
// for a checkpoint, how far it was trained and by which command. Returns the exit status.
int run_describe(const std::string& path);

}  // namespace cutrain::tools
