// Inference without a trainer (include/cutrain/train/inference.hpp) and the passes the Trainer's
// predict/evaluate share with it (src/train/inference.hpp).
#include "src/train/inference.hpp"

#include <cstdint>
#include <limits>
#include <vector>

#include "cutrain/stream.hpp"
#include "src/cuda/runtime.hpp"
#include "src/nn/backend.hpp"

namespace cutrain::train {
namespace detail {
namespace {

void sync(Device device, NativeStream s) {
  if (device.is_cuda()) cutrain::detail::cuda::stream_synchronize(s, device.ordinal());
}

}  // namespace

std::vector<float> predict_on(nn::Sequential& model, const data::Dataset& d,
                              std::int64_t batch_size, NativeStream s, const char* who) {
  CUTRAIN_CHECK(model.built(), who, ": build() the model first");
  CUTRAIN_CHECK(d.rows > 0, who, ": the data set is empty (0 rows)");
  CUTRAIN_CHECK(d.features == model.input_features(), who, ": the data has ", d.features,
                " features but the model expects ", model.input_features());
  CUTRAIN_CHECK(batch_size > 0, who, ": batch_size = ", batch_size, " must be positive");
  const EvalModeScope eval_mode(model);
  // Labels or targets, if any, ride along unread.
  data::Loader loader(d, model.device(),
                      {.batch_size = batch_size, .shuffle = false, .pad = false});
  loader.start_epoch(0);
  const auto width = static_cast<std::size_t>(model.output_features());
  std::vector<float> out(static_cast<std::size_t>(d.rows) * width);
  std::size_t at = 0;
  while (auto b = loader.next(s)) {
    const nn::Matrix& y = model.forward(b->x, s);
    // Ordered on the stream before the next forward reuses the output buffer.
    copy_bytes(out.data() + at, Device::cpu(), y.data, model.device(), y.size() * sizeof(float),
               model.device().is_cpu() ? nullptr : s);
    at += y.size();
  }
  sync(model.device(), s);
  return out;
}

EvalResult evaluate_on(nn::Sequential& model, const data::Dataset& d, std::int64_t batch_size,
                       Losses& losses, NativeStream s, dist::Communicator* comm, const char* who) {
  check_dataset(d, model, who);
  CUTRAIN_CHECK(batch_size > 0, who, ": batch_size = ", batch_size, " must be positive");
  const EvalModeScope eval_mode(model);
  data::Loader loader(d, model.device(),
                      {.batch_size = batch_size,
                       .shuffle = false,
                       .rank = comm ? comm->rank() : 0,
                       .world = comm ? comm->size() : 1,
                       .pad = false});
  loader.start_epoch(0);
  // Note [evaluation on the device]: the sums stay beside the logits; one read at the end.
  const nn::backend::Exec exec{model.device(), s, nullptr};
  Buffer sums(sizeof(rules::EvalSums), model.device());
  sums.zero();
  auto* device_sums = sums.as<rules::EvalSums>();
  while (auto b = loader.next(s)) {
    const nn::Matrix& out = model.forward(b->x, s);
    const nn::Loss& loss = losses.compute(out, *b, nullptr, s);
    // Regression batches have no labels: the loss sum only.
    nn::backend::eval_accumulate(exec, out.data, b->labels, b->rows, static_cast<int>(out.cols),
                                 loss.device_value(), loss.device_weight(), device_sums);
  }
  rules::EvalSums host{};
  copy_bytes(&host, Device::cpu(), device_sums, model.device(), sizeof(host), s);
  sync(model.device(), s);  // the one read of the results
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

}  // namespace detail

std::vector<float> predict(nn::Sequential& model, const data::Dataset& data,
                           const InferenceOptions& options) {
  CUTRAIN_CHECK(model.built(), "train::predict: build() the model first");
  const Stream stream(model.device());
  return detail::predict_on(model, data, options.batch_size, stream.native(), "train::predict");
}

EvalResult evaluate(nn::Sequential& model, const data::Dataset& data,
                    const InferenceOptions& options) {
  CUTRAIN_CHECK(model.built(), "train::evaluate: build() the model first");
  const Stream stream(model.device());
  detail::Losses losses{nn::SoftmaxCrossEntropy(options.label_smoothing, options.class_weights),
                        {}};
  return detail::evaluate_on(model, data, options.batch_size, losses, stream.native(), nullptr,
                             "train::evaluate");
}

ConfusionMatrix confusion_matrix(nn::Sequential& model, const data::Dataset& data,
                                 const InferenceOptions& options) {
  detail::check_dataset(data, model, "train::confusion_matrix");
  CUTRAIN_CHECK(data.classification(),
                "train::confusion_matrix: the data set has regression targets, not class labels");
  return confusion_matrix(predict(model, data, options),
                          static_cast<std::int32_t>(model.output_features()), data.labels);
}

std::vector<TargetMetrics> regression_metrics(nn::Sequential& model, const data::Dataset& data,
                                              const InferenceOptions& options) {
  detail::check_dataset(data, model, "train::regression_metrics");
  CUTRAIN_CHECK(!data.classification(),
                "train::regression_metrics: the data set has class labels, not regression "
                "targets (confusion_matrix() counts classes)");
  return regression_metrics(predict(model, data, options), data.targets, data.target_width);
}

}  // namespace cutrain::train
