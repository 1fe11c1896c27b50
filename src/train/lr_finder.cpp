// The learning-rate range test (include/cutrain/train/lr_finder.hpp).
#include "cutrain/train/lr_finder.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cutrain/clip.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/stream.hpp"
#include "src/nn/model_snapshot.hpp"
#include "src/train/batchnorm_rows.hpp"
#include "src/train/parameter_copy.hpp"
#include "src/train/training_rows.hpp"

namespace cutrain::train {
namespace {

// Everything a sweep changes - the model (nn::detail::ModelSnapshot) and the optimizer's state,
// step counts, loss scale and lr - put back on the way out, an error included, after the sweep's
// stream.
class Snapshot {
 public:
  Snapshot(nn::Sequential& m, optim::Optimizer& o, Stream& stream)
      : model_(m),
        optimizer_(o),
        stream_(stream),
        lr_(o.lr()),
        applied_(o.applied_steps()),
        skipped_(o.skipped_steps()),
        scale_(o.loss_scale_state()) {
    for (const optim::NamedState& s : o.state()) states_.push_back(s.arena->to_host());
  }
  ~Snapshot() {  // the optimizer here, then model_ (a member) as it is destroyed
    try {
      stream_.synchronize();  // the sweep's work first (its stream does not order with copies)
      std::size_t i = 0;
      for (const optim::NamedState& s : optimizer_.state()) s.arena->from_host(states_[i++]);
      optimizer_.set_step_counts(applied_, skipped_);
      if (optimizer_.loss_scaling()) optimizer_.set_loss_scale_state(scale_);
      optimizer_.set_lr(lr_);
    } catch (...) {  // a device error here was already reported by the sweep
    }
  }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

 private:
  nn::detail::ModelSnapshot model_;
  optim::Optimizer& optimizer_;
  Stream& stream_;
  std::vector<std::vector<float>> states_;
  float lr_;
  std::int64_t applied_, skipped_;
  optim::LossScaleState scale_;
};

void check_options(const LrFinderOptions& o) {
  CUTRAIN_CHECK(
      std::isfinite(o.min_lr) && std::isfinite(o.max_lr) && o.min_lr > 0 && o.max_lr > o.min_lr,
      "find_lr: min_lr = ", o.min_lr, ", max_lr = ", o.max_lr,
      " are invalid; valid: 0 < min_lr < max_lr, finite (e.g. 1e-7 and 10)");
  CUTRAIN_CHECK(o.steps >= 2, "find_lr: steps = ", o.steps, " is invalid; valid: >= 2");
  CUTRAIN_CHECK(o.batch_size >= 1, "find_lr: batch_size = ", o.batch_size,
                " is invalid; valid: >= 1");
  CUTRAIN_CHECK(std::isfinite(o.clip_norm) && o.clip_norm >= 0,
                "find_lr: clip_norm = ", o.clip_norm,
                " is invalid; valid: finite and >= 0 (0: no clipping)");
  CUTRAIN_CHECK(o.beta >= 0 && o.beta < 1, "find_lr: beta = ", o.beta,
                " is invalid; valid: [0, 1) (0: no smoothing)");
  CUTRAIN_CHECK(std::isfinite(o.diverge_factor) && o.diverge_factor > 1,
                "find_lr: diverge_factor = ", o.diverge_factor, " is invalid; valid: > 1");
  CUTRAIN_CHECK(o.skip_begin >= 0, "find_lr: skip_begin must be >= 0");
}

// The steepest descent of the smoothed curve against log lr before its minimum.
void suggest(LrFinderResult& r, std::int64_t skip_begin) {
  const auto n = static_cast<std::int64_t>(r.smoothed.size());
  std::int64_t lowest = 0;
  for (std::int64_t i = 1; i < n; ++i)
    if (r.smoothed[static_cast<std::size_t>(i)] < r.smoothed[static_cast<std::size_t>(lowest)])
      lowest = i;
  double steepest = 0;
  for (std::int64_t i = std::max<std::int64_t>(1, skip_begin); i + 1 <= lowest; ++i) {
    const auto a = static_cast<std::size_t>(i - 1), b = static_cast<std::size_t>(i + 1);
    const double slope =
        (r.smoothed[b] - r.smoothed[a]) / (std::log(r.lrs[b]) - std::log(r.lrs[a]));
    if (r.suggested_index < 0 || slope < steepest) {
      steepest = slope;
      r.suggested_index = i;
    }
  }
  if (r.suggested_index >= 0) r.suggested_lr = r.lrs[static_cast<std::size_t>(r.suggested_index)];
}

}  // namespace

LrFinderResult find_lr(nn::Sequential& model, optim::Optimizer& optimizer,
                       const data::Dataset& data, const LrFinderOptions& options) {
  check_options(options);
  CUTRAIN_CHECK(model.built(), "find_lr: build() the model first");
  CUTRAIN_CHECK(optimizer.device() == model.device(), "find_lr: the optimizer is on ",
                optimizer.device().str(), " but the model on ", model.device().str());
  data.validate("find_lr's data");
  CUTRAIN_CHECK(data.rows > 0 && data.features == model.input_features(), "find_lr: the data has ",
                data.rows, " rows of ", data.features, " features; the model expects ",
                model.input_features(), " features and at least one row");
  const bool labels = data.classification();
  CUTRAIN_CHECK(labels ? data.classes <= model.output_features()
                       : data.target_width == model.output_features(),
                "find_lr: the data's ", labels ? "classes" : "targets", " (",
                labels ? data.classes : data.target_width, ") do not fit the model's ",
                model.output_features(), " outputs");
  const Device device = model.device();
  Stream stream(device);
  const Snapshot snapshot(model, optimizer, stream);
  model.train();
  const detail::ParameterCopy parameter_copy(model, optimizer);  // Note [16-bit compute copy]
  const NativeStream s = stream.native();
  // Every step a full batch once the data holds one (fastai's training DataLoader drops its
  // last batch too): a short last batch's loss is noisier than the curve around it, and one of
  // a single row cannot be batch-normalized - the sweep stopped there with BatchNorm's error.
  data::Loader loader(data, device,
                      {.batch_size = options.batch_size,
                       .shuffle = true,
                       .drop_last = data.rows >= options.batch_size,
                       .seed = options.seed});
  detail::check_batchnorm_rows(model, data.rows, options.batch_size,
                               data.rows >= options.batch_size);
  GradClipper clipper(
      device, options.clip_norm > 0 ? options.clip_norm : std::numeric_limits<float>::infinity());
  CUTRAIN_CHECK(
      data.classification() || (options.label_smoothing == 0 && options.class_weights.empty()),
      "find_lr: label_smoothing and class_weights apply to labels, and this data set has "
      "regression targets; leave them 0 and empty");
  nn::SoftmaxCrossEntropy cross_entropy(options.label_smoothing, options.class_weights);
  nn::MseLoss mse;
  Buffer grad(
      static_cast<std::size_t>(loader.max_batch_rows() * model.output_features()) * sizeof(float),
      device);
  const detail::TrainingRows training_rows(model,
                                           loader.max_batch_rows());  // Note [dropout stream]

  LrFinderResult r;
  const double ratio = std::log(options.max_lr / options.min_lr);
  double average = 0, best = std::numeric_limits<double>::infinity();
  std::uint64_t epoch = 0;
  loader.start_epoch(epoch);
  for (std::int64_t k = 0; k < options.steps; ++k) {
    std::optional<data::Batch> b = loader.next(s);
    if (!b) {  // the data ran out before the steps: another epoch
      loader.start_epoch(++epoch);
      b = loader.next(s);
    }
    const double lr = options.min_lr * std::exp(ratio * static_cast<double>(k) /
                                                static_cast<double>(options.steps - 1));
    optimizer.set_lr(static_cast<float>(lr));
    nn::Matrix g{grad.as<float>(), b->rows, model.output_features(), device};
    const nn::Matrix& out = model.forward(b->x, s);
    const nn::Loss* loss = nullptr;
    if (labels) {
      cross_entropy.compute(out, b->labels, &g, s, nullptr, optimizer.device_loss_scale());
      loss = &cross_entropy;
    } else {
      mse.compute(out, b->targets, &g, s, nullptr, optimizer.device_loss_scale());
      loss = &mse;
    }
    model.backward(g, s);
    optimizer.step(model.parameters(), model.gradients(), clipper, s);
    const double value = loss->value();  // waits for this step's loss
    average = options.beta * average + (1.0 - options.beta) * value;
    const double smooth = average / (1.0 - std::pow(options.beta, static_cast<double>(k + 1)));
    r.lrs.push_back(lr);
    r.losses.push_back(value);
    r.smoothed.push_back(smooth);
    if (!std::isfinite(smooth) || smooth > options.diverge_factor * best) {
      r.diverged = true;
      break;
    }
    best = std::min(best, smooth);
  }
  stream.synchronize();
  suggest(r, options.skip_begin);
  return r;
}

}  // namespace cutrain::train
