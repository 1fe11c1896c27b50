// Trainer::evaluate and the weight average's evaluation (Note [weight averaging]).
#include <cstdint>
#include <limits>
#include <vector>

#include "cutrain/data/loader.hpp"
#include "cutrain/error.hpp"
#include "src/nn/backend.hpp"
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

std::vector<float> Trainer::predict(const data::Dataset& d) {
  CUTRAIN_CHECK(d.rows > 0, "Trainer::predict: the data set is empty (0 rows)");
  CUTRAIN_CHECK(d.features == model_.input_features(), "Trainer::predict: the data has ",
                d.features, " features but the model expects ", model_.input_features());
  const detail::EvalModeScope eval_mode(model_);
  // Labels or targets, if any, ride along unread.
  data::Loader loader(d, model_.device(),
                      {.batch_size = options_.batch_size, .shuffle = false, .pad = false});
  loader.start_epoch(0);
  const NativeStream s = impl_->stream.native();
  const auto width = static_cast<std::size_t>(model_.output_features());
  std::vector<float> out(static_cast<std::size_t>(d.rows) * width);
  std::size_t at = 0;
  while (auto b = loader.next(s)) {
    const nn::Matrix& y = model_.forward(b->x, s);
    // Ordered on the stream before the next forward reuses the output buffer.
    copy_bytes(out.data() + at, Device::cpu(), y.data, model_.device(), y.size() * sizeof(float),
               model_.device().is_cpu() ? nullptr : s);
    at += y.size();
  }
  impl_->stream.synchronize();
  return out;
}

ConfusionMatrix Trainer::confusion_matrix(const data::Dataset& d) {
  detail::check_dataset(d, model_, "Trainer::confusion_matrix");
  CUTRAIN_CHECK(d.classification(),
                "Trainer::confusion_matrix: the data set has regression "
                "targets, not class labels");
  const std::vector<float> outputs = predict(d);
  return train::confusion_matrix(outputs, static_cast<std::int32_t>(model_.output_features()),
                                 d.labels);
}

std::vector<TargetMetrics> Trainer::regression_metrics(const data::Dataset& d) {
  detail::check_dataset(d, model_, "Trainer::regression_metrics");
  CUTRAIN_CHECK(!d.classification(),
                "Trainer::regression_metrics: the data set has class "
                "labels, not regression targets (confusion_matrix() counts classes)");
  return train::regression_metrics(predict(d), d.targets, d.target_width);
}

EvalResult Trainer::evaluate(const data::Dataset& d) {
  detail::check_dataset(d, model_, "Trainer::evaluate");
  const detail::EvalModeScope eval_mode(model_);
  dist::Communicator* comm = options_.communicator;
  data::Loader loader(d, model_.device(),
                      {.batch_size = options_.batch_size,
                       .shuffle = false,
                       .rank = comm ? comm->rank() : 0,
                       .world = comm ? comm->size() : 1,
                       .pad = false});
  loader.start_epoch(0);
  // Note [evaluation on the device]: the sums stay beside the logits; one read at the end.
  const NativeStream s = impl_->stream.native();
  const nn::backend::Exec exec{model_.device(), s, nullptr};
  Buffer sums(sizeof(rules::EvalSums), model_.device());
  sums.zero();
  auto* device_sums = sums.as<rules::EvalSums>();
  while (auto b = loader.next(s)) {
    const nn::Matrix& out = model_.forward(b->x, s);
    const nn::Loss& loss = impl_->compute_loss(out, *b, nullptr, s);
    // Regression batches have no labels: the loss sum only.
    nn::backend::eval_accumulate(exec, out.data, b->labels, b->rows, static_cast<int>(out.cols),
                                 loss.device_value(), loss.device_weight(), device_sums);
  }
  rules::EvalSums host{};
  copy_bytes(&host, Device::cpu(), device_sums, model_.device(), sizeof(host), s);
  impl_->stream.synchronize();  // the one read of the results
  double correct_all = static_cast<double>(host.correct);
  double loss_all = host.loss;
  // The rows' count without class weights (an exact integer in double: the loss's bits are those
  // of loss / rows), the total weight with them.
  double weight_all = host.weight;
  if (comm != nullptr) {  // every rank evaluated its shard: sum over the ranks
    loss_all = comm->allreduce_sum(loss_all);
    correct_all = comm->allreduce_sum(correct_all);
    weight_all = comm->allreduce_sum(weight_all);
  }
  const double accuracy = d.classification() ? correct_all / static_cast<double>(d.rows)
                                             : std::numeric_limits<double>::quiet_NaN();
  return {loss_all / weight_all, accuracy, d.rows};
}

}  // namespace cutrain::train
