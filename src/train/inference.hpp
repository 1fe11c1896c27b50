#pragma once
// The inference passes shared by the free functions (include/cutrain/train/inference.hpp) and
// the Trainer's methods, on a stream the caller owns; the checks both make of a data set.

#include <cstdint>
#include <vector>

#include "cutrain/data/loader.hpp"
#include "cutrain/dist/communicator.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/train/inference.hpp"

namespace cutrain::train::detail {

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

// What fit() and evaluate() accept: a non-empty data set the model's shape matches - labels in
// [0, outputs) (softmax cross-entropy) or targets as wide as the output (mean squared error).
inline void check_dataset(const data::Dataset& d, const nn::Sequential& model, const char* who) {
  CUTRAIN_CHECK(model.built(), who, ": build() the model first");
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

// The losses evaluation and training compute: the one the batch's data calls for - cross-entropy
// on labels, MSE on targets - and, when `grad` is given, its gradient (times *grad_seed, the loss
// scale, when given); the mean also into `record` (device) when given.
struct Losses {
  nn::SoftmaxCrossEntropy cross_entropy;
  nn::MseLoss mse;
  const nn::Loss& compute(const nn::Matrix& out, const data::Batch& b, nn::Matrix* grad,
                          NativeStream s, float* record = nullptr,
                          const float* grad_seed = nullptr) {
    if (b.labels != nullptr) {
      cross_entropy.compute(out, b.labels, grad, s, record, grad_seed);
      return cross_entropy;
    }
    mse.compute(out, b.targets, grad, s, record, grad_seed);
    return mse;
  }
};

// predict() / evaluate() on stream `s` (synchronized before returning); `comm`: every rank
// evaluates its shard and the sums are added over the ranks.
// `flips`: Note [test-time flips].
std::vector<float> predict_on(nn::Sequential& model, const data::Dataset& d,
                              std::int64_t batch_size, const data::EvalAugment& flips,
                              NativeStream s, const char* who);
EvalResult evaluate_on(nn::Sequential& model, const data::Dataset& d, std::int64_t batch_size,
                       const data::EvalAugment& flips, Losses& losses, NativeStream s,
                       dist::Communicator* comm, const char* who);

}  // namespace cutrain::train::detail
