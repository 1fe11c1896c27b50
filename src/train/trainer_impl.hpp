#pragma once
// The trainer's state beside its public members, shared by src/train/trainer.cpp (fit, resume)
// and src/train/evaluate.cpp.

#include <memory>
#include <utility>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/clip.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/stream.hpp"
#include "cutrain/train/trainer.hpp"
#include "src/train/gradient_accumulator.hpp"
#include "src/train/weight_average.hpp"

namespace cutrain::train {

struct Trainer::Impl {
  Impl(float label_smoothing, std::vector<float> class_weights)
      : loss(label_smoothing, std::move(class_weights)) {}
  Stream stream;
  nn::SoftmaxCrossEntropy loss;  // classification data (labels)
  nn::MseLoss mse;               // regression data (targets)

  // The batch's loss - cross-entropy on labels, MSE on targets (the loss follows the data) - and,
  // when `grad` is given, its gradient; the mean also into `record` (device) when given.
  const nn::Loss& compute_loss(const nn::Matrix& out, const data::Batch& b, nn::Matrix* grad,
                               NativeStream s, float* record = nullptr) {
    if (b.labels != nullptr) {
      loss.compute(out, b.labels, grad, s, record);
      return loss;
    }
    mse.compute(out, b.targets, grad, s, record);
    return mse;
  }
  std::unique_ptr<GradClipper> clipper;
  Buffer grad;         // dlogits, [batch, classes]
  Buffer step_losses;  // per-step mean losses of the epoch (device)
  Buffer step_norms;   // per-step pre-clip norms of the epoch (device)
  Buffer eval_labels;
  std::unique_ptr<Arena> best_params, best_buffers;
  std::unique_ptr<detail::GradientAccumulator> accumulator;  // Note [gradient accumulation]
  std::unique_ptr<detail::WeightAverage> average;            // Note [weight averaging]
};

namespace detail {

// Eval mode for a scope (evaluation, prediction), the model's previous mode restored on the way
// out - an error included.
class EvalModeScope {
 public:
  explicit EvalModeScope(nn::Sequential& m) : model_(m), was_training_(m.training()) { m.eval(); }
  ~EvalModeScope() { model_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  nn::Sequential& model_;
  bool was_training_;
};

// Checkpoint metadata "schedule.<key>": the LR schedule's state (Note [schedule state]).
inline constexpr const char* kSchedulePrefix = "schedule.";

// Note [mid-epoch resume] (src/train/resume.cpp): refuses, naming what changed, a state taken
// mid-epoch whose data order differs from `now`.
void check_same_order(const TrainState& st, const TrainState::DataOrder& now);

// What fit() and evaluate() accept: a non-empty data set the model's shape matches - labels in
// [0, outputs) (softmax cross-entropy) or targets as wide as the output (mean squared error).
inline void check_dataset(const data::Dataset& d, const nn::Sequential& model, const char* who) {
  CUTRAIN_CHECK(d.rows > 0, who, ": the data set is empty (0 rows)");
  CUTRAIN_CHECK(d.features == model.input_features(), who, ": the data has ", d.features,
                " features but the model expects ", model.input_features());
  if (d.classification())
    CUTRAIN_CHECK(d.classes <= model.output_features(), who, ": the data has ", d.classes,
                  " classes but the model outputs ", model.output_features());
  else
    CUTRAIN_CHECK(d.target_width == model.output_features(), who,
                  ": the data has neither labels nor targets as wide as the model's ",
                  model.output_features(), " outputs (targets: ", d.target_width,
                  " per row); regression needs one target per output");
}

}  // namespace detail
}  // namespace cutrain::train
