// Inference without a trainer (include/cutrain/train/inference.hpp) and the passes the Trainer's
// predict/evaluate share with it (src/train/inference.hpp).
#include "src/train/inference.hpp"

#include <cstdint>
#include <limits>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/stream.hpp"
#include "src/cuda/runtime.hpp"
#include "src/data/augment.hpp"
#include "src/nn/backend.hpp"

namespace cutrain::train {
namespace detail {
namespace {

void sync(Device device, NativeStream s) {
  if (device.is_cuda()) cutrain::detail::cuda::stream_synchronize(s, device.ordinal());
}

// Note [test-time flips]: with EvalAugment::flip (airbench's test-time flips) a batch takes two
// forward passes in the model's own buffers - the images, then their mirror images, written
// beside the batch (rules::mirror_source, kernels/data/augment.cuh) - and its outputs are their
// mean, rules::mean_of_two: (f(x) + f(flip(x))) / 2 in float, as PyTorch computes it. The loss,
// the accuracy, the predictions and so validation's judgements are the mean's. Two passes of the
// batch size rather than one of twice it: the model's buffers stay the size training gave them
// (larger ones would move them, and the captured step with them - Note [the step as one CUDA
// graph]). A model trained with mirror images (Augment::flip) gains; one trained without has
// never seen a mirrored shoe, and loses (bench/RESULTS.md, "The default CNN").
class Outputs {
 public:
  Outputs(const data::EvalAugment& flips, const nn::Sequential& model, std::int64_t batch_size,
          const char* who)
      : flip_(flips.flip) {
    data::check_eval_augment(flips, model.input_features(), who);
    if (!flip_) return;
    width_ = flips.image[2];
    const auto rows = static_cast<std::size_t>(batch_size);
    mirrored_ = Buffer(rows * static_cast<std::size_t>(model.input_features()) * sizeof(float),
                       model.device());
    mean_ = Buffer(rows * static_cast<std::size_t>(model.output_features()) * sizeof(float),
                   model.device());
  }

  const nn::Matrix& forward(nn::Sequential& model, const nn::Matrix& x, NativeStream s) {
    const nn::Matrix& y = model.forward(x, s);
    if (!flip_) return y;
    const nn::backend::Exec exec{model.device(), s, nullptr};
    float* mean = mean_.as<float>();
    nn::backend::copy(exec, y.data, mean, y.size());  // the next forward reuses y's buffer
    float* mirrored = mirrored_.as<float>();
    data::detail::mirror_rows(model.device(), x.data, x.rows, x.cols, width_, mirrored, s);
    const nn::Matrix& z = model.forward({mirrored, x.rows, x.cols, x.device}, s);
    nn::backend::mean_of_two(exec, mean, z.data, mean, z.size());
    out_ = {mean, z.rows, z.cols, z.device};
    return out_;
  }

 private:
  bool flip_;
  std::int64_t width_ = 0;
  Buffer mirrored_;  // [batch, features]: the batch's mirror images
  Buffer mean_;      // [batch, outputs]: the mean of the two passes
  nn::Matrix out_;
};

}  // namespace

std::vector<float> predict_on(nn::Sequential& model, const data::Dataset& d,
                              std::int64_t batch_size, const data::EvalAugment& flips,
                              NativeStream s, const char* who) {
  CUTRAIN_CHECK(model.built(), who, ": build() the model first");
  CUTRAIN_CHECK(d.rows > 0, who, ": the data set is empty (0 rows)");
  CUTRAIN_CHECK(d.features == model.input_features(), who, ": the data has ", d.features,
                " features but the model expects ", model.input_features());
  CUTRAIN_CHECK(batch_size > 0, who, ": batch_size = ", batch_size, " must be positive");
  Outputs outputs(flips, model, batch_size, who);
  const EvalModeScope eval_mode(model);
  // Labels or targets, if any, ride along unread.
  data::Loader loader(d, model.device(),
                      {.batch_size = batch_size, .shuffle = false, .pad = false});
  loader.start_epoch(0);
  const auto width = static_cast<std::size_t>(model.output_features());
  std::vector<float> out(static_cast<std::size_t>(d.rows) * width);
  std::size_t at = 0;
  while (auto b = loader.next(s)) {
    const nn::Matrix& y = outputs.forward(model, b->x, s);
    // Ordered on the stream before the next forward reuses the output buffer.
    copy_bytes(out.data() + at, Device::cpu(), y.data, model.device(), y.size() * sizeof(float),
               model.device().is_cpu() ? nullptr : s);
    at += y.size();
  }
  sync(model.device(), s);
  return out;
}

EvalResult evaluate_on(nn::Sequential& model, const data::Dataset& d, std::int64_t batch_size,
                       const data::EvalAugment& flips, Losses& losses, NativeStream s,
                       dist::Communicator* comm, const char* who) {
  check_dataset(d, model, who);
  CUTRAIN_CHECK(batch_size > 0, who, ": batch_size = ", batch_size, " must be positive");
  Outputs outputs(flips, model, batch_size, who);
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
    const nn::Matrix& out = outputs.forward(model, b->x, s);
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
  return detail::predict_on(model, data, options.batch_size, options.augment, stream.native(),
                            "train::predict");
}

EvalResult evaluate(nn::Sequential& model, const data::Dataset& data,
                    const InferenceOptions& options) {
  CUTRAIN_CHECK(model.built(), "train::evaluate: build() the model first");
  const Stream stream(model.device());
  detail::Losses losses{nn::SoftmaxCrossEntropy(options.label_smoothing, options.class_weights),
                        {}};
  return detail::evaluate_on(model, data, options.batch_size, options.augment, losses,
                             stream.native(), nullptr, "train::evaluate");
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
