// The Trainer's construction: its options checked before any training (each refusal names the
// option and the valid values), and the pieces fit() runs with - the stream, the clipper, the
// weight average, the augmentation's buffer; fit()'s checks of its data and options against the
// resumed state. fit() itself: src/train/trainer.cpp.
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>

#include "cutrain/dist/communicator.hpp"
#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"
#include "cutrain/train/trainer.hpp"
#include "src/core/numbers.hpp"
#include "src/train/trainer_impl.hpp"

namespace cutrain::train {

Trainer::Trainer(nn::Sequential& model, optim::Optimizer& optimizer, TrainerOptions options)
    : model_(model),
      optimizer_(optimizer),
      options_(std::move(options)),
      impl_(std::make_unique<Impl>(options_.label_smoothing, options_.class_weights)) {
  CUTRAIN_CHECK(model.built(), "Trainer: build() the model first");
  CUTRAIN_CHECK(
      options_.class_weights.empty() ||
          static_cast<std::int64_t>(options_.class_weights.size()) == model.output_features(),
      "Trainer: ", options_.class_weights.size(), " class weights for a model with ",
      model.output_features(), " outputs; give one weight per class");
  CUTRAIN_CHECK(options_.epochs >= 0, "Trainer: epochs = ", options_.epochs, " must be >= 0");
  CUTRAIN_CHECK(options_.batch_size > 0, "Trainer: batch_size = ", options_.batch_size,
                " must be positive");
  CUTRAIN_CHECK(options_.checkpoint_every >= 0 &&
                    (options_.checkpoint_every == 0 || !options_.checkpoint_path.empty()),
                "Trainer: checkpoint_every = ", options_.checkpoint_every,
                " needs to be >= 0, and a checkpoint_path when > 0");
  CUTRAIN_CHECK(options_.patience >= 0, "Trainer: patience must be >= 0");
  // A negative min_delta made a worse epoch an improvement (Keras takes its absolute value).
  CUTRAIN_CHECK(std::isfinite(options_.min_delta) && options_.min_delta >= 0,
                "Trainer: min_delta = ", options_.min_delta,
                " is invalid; valid: finite and >= 0 (the least change that is an improvement)");
  CUTRAIN_CHECK(options_.log_every >= 0, "Trainer: log_every = ", options_.log_every,
                " is invalid; valid: >= 0 (0: no progress loss)");
  if (!options_.checkpoint_path.empty()) {
    // Checked now, not at the first save an epoch later: a run must not train for nothing.
    const std::filesystem::path path(options_.checkpoint_path);
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    std::error_code ec;
    CUTRAIN_CHECK(
        std::filesystem::is_directory(dir, ec) && !std::filesystem::is_directory(path, ec),
        "Trainer: checkpoint_path '", options_.checkpoint_path,
        "' must name a file in an existing directory");
  }
  CUTRAIN_CHECK(
      std::isfinite(options_.ema_decay) && options_.ema_decay >= 0 && options_.ema_decay < 1,
      "Trainer: ema_decay = ", options_.ema_decay,
      " is invalid; valid: [0, 1) (0: no weight averaging; typical 0.99-0.9999)");
  CUTRAIN_CHECK(options_.accumulate_steps >= 1,
                "Trainer: accumulate_steps = ", options_.accumulate_steps,
                " is invalid; valid: >= 1 (1: a step per batch)");
  CUTRAIN_CHECK(std::isfinite(options_.clip_norm) && options_.clip_norm >= 0,
                "Trainer: clip_norm = ", options_.clip_norm,
                " is invalid; valid: finite and >= 0 (0: no clipping)");
  data::check_augment(options_.augment, model.input_features());
  data::check_eval_augment(options_.eval_augment, model.input_features(), "Trainer: eval_augment");
  CUTRAIN_CHECK(optimizer.device() == model.device(), "Trainer: the optimizer is on ",
                optimizer.device().str(), " but the model on ", model.device().str());
  impl_->stream = Stream(model.device());
  if (options_.ema_decay > 0)
    impl_->average =
        std::make_unique<detail::WeightAverage>(model.parameters(), options_.ema_decay);
  impl_->clipper = std::make_unique<GradClipper>(
      model.device(),
      options_.clip_norm > 0 ? options_.clip_norm : std::numeric_limits<float>::infinity());
  // Note [replicas reduce alike]: ranks on different GPU models must clip (and skip) alike.
  impl_->clipper->set_replicated(options_.communicator != nullptr &&
                                 options_.communicator->size() > 1);
}

rules::AugmentArgs Trainer::Impl::prepare_augment(const data::Augment& a, std::uint64_t seed,
                                                  const nn::Replica& replica,
                                                  std::int64_t batches_per_epoch,
                                                  std::int64_t max_rows, std::int64_t features,
                                                  Device device) {
  if (!a.enabled()) return {};
  augmented = Buffer(static_cast<std::size_t>(max_rows * features) * sizeof(float), device);
  return {.key = data::augment_key(seed),
          .channels = a.image[0],
          .height = a.image[1],
          .width = a.image[2],
          .shift = a.shift,
          .flip = a.flip,
          .batches_per_epoch = batches_per_epoch,
          .max_rows = max_rows,
          .rank = replica.rank,
          .world = replica.world,
          .epoch = &batch_record()->epoch,
          .slot = &batch_record()->slot};
}

namespace detail {
namespace {

// TrainState::loss: the objective's options, exactly (%.9g round-trips a float; Note [numbers
// in files]: the same text in every locale).
std::string loss_description(bool regression, const TrainerOptions& o) {
  if (regression) return "mse";
  std::string s = "cross_entropy label_smoothing=" +
                  cutrain::detail::format_g(static_cast<double>(o.label_smoothing), 9);
  if (o.class_weights.empty()) return s;
  s += " class_weights=[";
  for (std::size_t k = 0; k < o.class_weights.size(); ++k) {
    if (k > 0) s += ',';  // (not `(k ? "," : "") + ...`: GCC 12's false -Wrestrict)
    s += cutrain::detail::format_g(static_cast<double>(o.class_weights[k]), 9);
  }
  return s + "]";
}

// TrainState::augment: what each training image goes through (Note [augmentation on the
// device]).
std::string augment_description(const data::Augment& a) {
  if (!a.enabled()) return "off";
  return "shift=" + std::to_string(a.shift) + " flip=" + (a.flip ? "1" : "0") +
         " image=" + shape_str(a.image);
}

}  // namespace

void check_fit(const TrainerOptions& o, TrainState& state, const nn::Sequential& model,
               const data::Dataset& train, const data::Dataset* val) {
  detail::check_dataset(train, model, "Trainer::fit (training data)");
  // Labels train with softmax cross-entropy, targets with mean squared error.
  const bool regression = !train.classification();
  CUTRAIN_CHECK(!regression || o.label_smoothing == 0.0F,
                "Trainer::fit: label_smoothing = ", o.label_smoothing,
                " applies to labels, and this data set has regression targets; set it to 0");
  const bool by_accuracy = o.monitor == TrainerOptions::Monitor::kValAccuracy;
  CUTRAIN_CHECK(!regression || !by_accuracy,
                "Trainer::fit: monitor = val_accuracy, but this data set has regression targets "
                "(no accuracy); monitor the validation loss");
  const std::string monitor_name = by_accuracy ? "val_accuracy" : "val_loss";
  CUTRAIN_CHECK(!state.has_best || state.monitor == monitor_name,
                "Trainer::fit: the resumed run's early stopping monitored ", state.monitor,
                " and this one monitors ", monitor_name, "; monitor the same to continue it");
  state.monitor = monitor_name;
  const std::string loss = loss_description(regression, o);
  CUTRAIN_CHECK(state.loss.empty() || state.loss == loss,
                "Trainer::fit: the resumed run trained with ", state.loss, " and this one with ",
                loss,
                "; give the same loss options (label_smoothing, class_weights) to continue it");
  state.loss = loss;
  const std::string augmented = augment_description(o.augment);
  CUTRAIN_CHECK(state.augment.empty() || state.augment == augmented,
                "Trainer::fit: the resumed run trained with augmentation ", state.augment,
                " and this one with ", augmented, "; give the same augment options to continue it");
  state.augment = augmented;
  // Note [test-time flips]: validation is what early stopping, the plateau schedule and the best
  // weights judge; a test evaluation alone may change between a run and its resume.
  const std::string evaluation =
      o.eval_augment.flip ? "flip image=" + shape_str(o.eval_augment.image) : "plain";
  const bool validates = val != nullptr && val->rows > 0;
  CUTRAIN_CHECK(!validates || state.evaluation.empty() || state.evaluation == evaluation,
                "Trainer::fit: the resumed run validated with eval_augment ", state.evaluation,
                " and this one with ", evaluation,
                "; give the same eval_augment to continue it (its validation judged that model)");
  state.evaluation = evaluation;
  const bool synced = synchronizes_batchnorm(o);
  const std::string statistics = synced ? "global" : "rank";
  CUTRAIN_CHECK(state.batch_statistics.empty() || state.batch_statistics == statistics,
                "Trainer::fit: the resumed run's BatchNorm normalized with ",
                state.batch_statistics == "global" ? "the global batch's" : "each rank's own",
                " statistics and this one with ", synced ? "the global batch's" : "each rank's own",
                "; give the same sync_batchnorm to continue it");
  state.batch_statistics = statistics;
  CUTRAIN_CHECK(!regression || o.class_weights.empty(),
                "Trainer::fit: class_weights apply to labels, and this data set has regression "
                "targets; leave them empty");
  CUTRAIN_CHECK(o.patience == 0 || (val != nullptr && val->rows > 0),
                "Trainer::fit: patience = ", o.patience,
                " stops on the validation loss, but no validation data was given; pass some "
                "or set patience = 0");
  if (val != nullptr && val->rows > 0) {
    detail::check_dataset(*val, model, "Trainer::fit (validation data)");
    CUTRAIN_CHECK(val->classification() == train.classification(),
                  "Trainer::fit: the training data has ", regression ? "targets" : "labels",
                  " but the validation data ", regression ? "labels" : "targets",
                  "; give both the same kind");
  }
}

// Note [running statistics of rank 0]: BatchNorm's running statistics (the model's buffers)
// follow each rank's own batches, so the ranks' copies drift apart during an epoch. Training
// never reads them - BatchNorm in training normalizes with the batch's statistics - but
// evaluation does, sharded over the ranks, and rank 0 checkpoints and exports its own. So fit()
// has every rank take rank 0's at each epoch's end, before validation, the callbacks and the
// checkpoint, and where an agreed stop ends it mid-epoch: every evaluation is then of the one
// model rank 0 saves, and a resumed run (whose ranks all load rank 0's) matches the
// uninterrupted one. PyTorch DDP's broadcast_buffers does the same from rank 0 before every
// forward; once an epoch is enough, since nothing in between reads them.
std::vector<std::unique_ptr<io::FileLock>> lock_outputs(const TrainerOptions& o, bool lead) {
  std::vector<std::unique_ptr<io::FileLock>> locks;
  if (!lead) return locks;
  // The metrics file too: two runs of a sweep naming one lost the first run's lines to the
  // second's truncation, silently.
  for (const auto& [path, what] : {std::pair{&o.checkpoint_path, "checkpoint_path"},
                                   std::pair{&o.metrics_path, "metrics_path"}}) {
    if (path->empty()) continue;
    std::error_code ec;
    const std::filesystem::path real(io::resolve_links(*path));
    if (std::filesystem::exists(real, ec) && !std::filesystem::is_regular_file(real, ec)) continue;
    locks.push_back(std::make_unique<io::FileLock>(*path, what));
  }
  return locks;
}

void take_rank0_statistics(nn::Sequential& model, dist::Communicator* comm) {
  if (comm != nullptr && comm->size() > 1) comm->broadcast(model.buffers(), 0);
}

RankBinding::RankBinding(nn::Sequential& model, dist::Communicator* comm, bool sync_batchnorm)
    : model_(model) {
  model.set_replica(comm ? comm->rank() : 0, comm ? comm->size() : 1);
  if (sync_batchnorm) {
    const Device device = model.device();
    model.set_batch_statistics_sum(
        [comm, device](double* values, std::size_t n, NativeStream stream) {
          comm->allreduce_sum(values, n, device, stream);
        });
  }
}

RankBinding::~RankBinding() {
  model_.set_batch_statistics_sum({});
}

}  // namespace detail

Trainer::~Trainer() = default;

void Trainer::add_callback(std::shared_ptr<Callback> callback) {
  CUTRAIN_CHECK(callback != nullptr, "Trainer::add_callback: null callback");
  callbacks_.push_back(std::move(callback));
}

}  // namespace cutrain::train
