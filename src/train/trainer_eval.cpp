// The Trainer's evaluation methods: the inference passes (src/train/inference.hpp) on the
// trainer's stream, with its batch size, losses and ranks; and the weight average's evaluation
// (Note [weight averaging]).
#include <vector>

#include "cutrain/error.hpp"
#include "src/train/inference.hpp"
#include "src/train/trainer_impl.hpp"

namespace cutrain::train {

EvalResult Trainer::evaluate_averaged(const data::Dataset& d) {
  if (!impl_->average || state_.ema_updates == 0) return evaluate(d);
  return impl_->average->with_average(model_.parameters(), impl_->stream,
                                      [&] { return evaluate(d); });
}

void Trainer::apply_ema() {
  CUTRAIN_CHECK(impl_->average && state_.ema_updates > 0,
                "Trainer::apply_ema: no weight average (set TrainerOptions::ema_decay and train "
                "at least one step)");
  impl_->stream.synchronize();  // the copy runs on the null stream
  model_.parameters().copy_from(impl_->average->average());
}

// Each rank predicts all of `d` (no collectives).
std::vector<float> Trainer::predict(const data::Dataset& d) {
  return detail::predict_on(model_, d, options_.batch_size, options_.eval_augment,
                            impl_->stream.native(), "Trainer::predict");
}

EvalResult Trainer::evaluate(const data::Dataset& d) {
  return detail::evaluate_on(model_, d, options_.batch_size, options_.eval_augment, impl_->losses,
                             impl_->stream.native(), options_.communicator, "Trainer::evaluate");
}

ConfusionMatrix Trainer::confusion_matrix(const data::Dataset& d) {
  detail::check_dataset(d, model_, "Trainer::confusion_matrix");
  CUTRAIN_CHECK(d.classification(),
                "Trainer::confusion_matrix: the data set has regression "
                "targets, not class labels");
  return train::confusion_matrix(predict(d), static_cast<std::int32_t>(model_.output_features()),
                                 d.labels);
}

std::vector<TargetMetrics> Trainer::regression_metrics(const data::Dataset& d) {
  detail::check_dataset(d, model_, "Trainer::regression_metrics");
  CUTRAIN_CHECK(!d.classification(),
                "Trainer::regression_metrics: the data set has class "
                "labels, not regression targets (confusion_matrix() counts classes)");
  return train::regression_metrics(predict(d), d.targets, d.target_width);
}

}  // namespace cutrain::train
