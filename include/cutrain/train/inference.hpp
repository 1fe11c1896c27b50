#pragma once
// Inference without a trainer: a model built here or loaded (train::load_model) predicts and is
// evaluated with no optimizer - what a deployed model needs. Each call runs in eval mode (no
// dropout, BatchNorm's running statistics; the model's mode is restored afterwards, errors
// included) on a stream of its own, and returns when the results are on the host.
// Trainer::predict / evaluate / confusion_matrix / regression_metrics are these on the trainer's
// stream with its options.
//
// The loss follows the data, as in training: softmax cross-entropy (with `label_smoothing` and
// `class_weights`, nn::SoftmaxCrossEntropy) for labels, mean squared error for float targets.

#include <cstdint>
#include <vector>

#include "cutrain/data/augment.hpp"
#include "cutrain/data/dataset.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/train/confusion.hpp"
#include "cutrain/train/regression_metrics.hpp"

namespace cutrain::train {

/// Mean loss and accuracy of a model over a data set.
struct EvalResult {
  double loss = 0;           ///< the mean loss over the set (with class weights: the weighted mean)
  double accuracy = 0;       ///< NaN for regression targets
  std::int64_t samples = 0;  ///< rows evaluated
};

/// Batch size of evaluate and predict, and evaluate()'s loss options.
struct InferenceOptions {
  std::int64_t batch_size = 256;       ///< rows per forward pass
  float label_smoothing = 0;           ///< evaluate()'s cross-entropy
  std::vector<float> class_weights{};  ///< evaluate()'s cross-entropy; empty: none
  /// Test-time flips (data::EvalAugment, Note [test-time flips]): each row's outputs averaged
  /// with its mirror image's, in predict() and evaluate() alike; off by default.
  data::EvalAugment augment{};
};

/// The model's outputs for every row of `data`, in its order, row-major [rows, outputs]: logits
/// for a classifier (rules::row_argmax / predicted_class for the class), values for regression.
/// `data` needs features only.
std::vector<float> predict(nn::Sequential& model, const data::Dataset& data,
                           const InferenceOptions& options = {});
/// The mean loss and the accuracy over a data set with labels or targets.
EvalResult evaluate(nn::Sequential& model, const data::Dataset& data,
                    const InferenceOptions& options = {});
/// predict() counted by true and predicted class (include/cutrain/train/confusion.hpp).
ConfusionMatrix confusion_matrix(nn::Sequential& model, const data::Dataset& data,
                                 const InferenceOptions& options = {});
/// predict() against regression targets, per target: MSE, MAE, R^2.
std::vector<TargetMetrics> regression_metrics(nn::Sequential& model, const data::Dataset& data,
                                              const InferenceOptions& options = {});

}  // namespace cutrain::train
