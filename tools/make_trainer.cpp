// The optimizer, the learning-rate schedule and the trainer's options that cutrain-train's flags
// configure (tools/train_options.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "tools/resume_checks.hpp"
#include "tools/train_data.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

namespace {
std::unique_ptr<optim::Optimizer> make_rule(const Config& c, const Arena& params) {
  if (c.optimizer == "sgd")
    return std::make_unique<optim::Sgd>(
        params, optim::SgdOptions{c.lr, c.momentum, c.dampening, c.weight_decay, c.nesterov});
  if (c.optimizer == "adagrad")
    return std::make_unique<optim::Adagrad>(
        params,
        optim::AdagradOptions{
            .lr = c.lr, .weight_decay = c.weight_decay, .eps = c.eps == 1e-8F ? 1e-10F : c.eps});
  if (c.optimizer == "rmsprop")
    return std::make_unique<optim::Rmsprop>(
        params, optim::RmspropOptions{c.lr, c.alpha, c.eps, c.weight_decay, c.momentum, c.centered,
                                      c.nesterov});
  const optim::AdamOptions o{c.lr, c.beta1, c.beta2, c.eps, c.weight_decay, c.amsgrad};
  if (c.optimizer == "adam") return std::make_unique<optim::Adam>(params, o);
  return std::make_unique<optim::AdamW>(params, o);
}
}  // namespace

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, const Arena& params) {
  std::unique_ptr<optim::Optimizer> opt;
  try {
    opt = make_rule(c, params);
  } catch (const Error& e) {
    // Every option comes from a flag (--nesterov without --momentum, ...): exit 2, naming it.
    throw UsageError("--optimizer " + c.optimizer + ": " + e.what());
  }
  if (c.loss_scale == "dynamic") opt->enable_loss_scaling();  // GradScaler's defaults
  return opt;
}

std::shared_ptr<optim::LrSchedule> make_schedule(const Config& c, std::int64_t per_epoch) {
  // --epochs 0 takes no step (the test evaluation of an --init-from model, a checkpoint of the
  // start): its schedule is planned as for one epoch, where a one-cycle schedule over no step
  // refused the run. The rate at step 0 is every span's, and a resume plans its own span.
  const std::int64_t total =
      std::max<std::int64_t>(1, std::max<std::int64_t>(c.epochs, 1) * per_epoch);
  std::unique_ptr<optim::LrSchedule> s;
  if (c.schedule == "constant") {
    s = std::make_unique<optim::ConstantLr>(c.lr);
  } else if (c.schedule == "step") {
    // --step-size counts epochs, StepLr steps. Less than half a step would round to none (a
    // decay at every step) and is refused; past int64 (where llround is undefined) it is a size
    // no run reaches.
    const double steps = c.step_size * static_cast<double>(per_epoch);
    if (!(steps >= 0.5)) {
      char why[160];
      std::snprintf(why, sizeof why,
                    "--step-size %g epochs is less than one step (an epoch is %lld steps)",
                    c.step_size, static_cast<long long>(per_epoch));
      throw UsageError(why);
    }
    const std::int64_t size = steps < 0x1p62 ? std::llround(steps) : std::int64_t{1} << 62;
    s = std::make_unique<optim::StepLr>(c.lr, size, c.gamma);
  } else if (c.schedule == "exponential") {
    s = std::make_unique<optim::ExponentialLr>(c.lr, std::pow(c.gamma, 1.0 / per_epoch));
  } else if (c.schedule == "plateau") {
    s = std::make_unique<optim::ReduceLrOnPlateau>(c.lr, c.gamma, c.plateau_patience, 1e-4, 0,
                                                   c.min_lr);
  } else if (c.schedule == "onecycle") {
    s = std::make_unique<optim::OneCycleLr>(c.lr, std::max<std::int64_t>(2, total), c.pct_start);
  } else if (c.schedule == "linear") {
    s = std::make_unique<optim::LinearDecayLr>(c.lr, c.min_lr, total);
  } else {
    s = std::make_unique<optim::CosineLr>(c.lr, total, c.min_lr);
  }
  if (c.warmup > 0) s = std::make_unique<optim::WarmupLr>(std::move(s), c.warmup);
  return s;
}

train::TrainerOptions trainer_options(const Config& c, const TrainData& d, dist::Communicator* comm,
                                      const std::string& command_line) {
  train::TrainerOptions to;
  to.epochs = c.epochs;
  to.drop_last = c.drop_last;
  to.batch_size = c.batch_size;
  to.accumulate_steps = c.accumulate;
  to.shuffle = !c.no_shuffle;
  to.seed = c.seed;
  to.clip_norm = c.clip_norm;
  to.patience = c.patience;
  to.monitor = c.monitor == "val_accuracy" ? train::TrainerOptions::Monitor::kValAccuracy
                                           : train::TrainerOptions::Monitor::kValLoss;
  to.metrics_path = c.metrics;
  to.checkpoint_path = c.save;
  to.checkpoint_metadata = {
      {"command", command_line},
      {train::kDataSpecKey, d.spec.to_json()},
      {kValidationSplitKey, validation_split(c)},
      {kScheduleSpanKey, schedule_span(c)}};  // Note [schedule span on resume]
  to.label_smoothing = c.label_smoothing;
  to.class_weights = d.class_weights;
  to.ema_decay = c.ema;
  to.communicator = comm;
  to.bucket_bytes = static_cast<std::size_t>(c.bucket_mb * 1024 * 1024);
  to.sync_batchnorm = c.sync_batchnorm;
  to.resident_data = c.resident_data;
  if (c.augment_shift > 0 || c.augment_flip) {
    to.augment = {.image = image_shape(c, d.train.features),
                  .shift = c.augment_shift,
                  .flip = c.augment_flip};
    const std::int64_t side = std::min(to.augment.image[1], to.augment.image[2]);
    if (c.augment_shift >= side)
      throw UsageError("--augment-shift " + std::to_string(c.augment_shift) +
                       " must be smaller than the images' " + std::to_string(side) + " pixels");
  }
  to.eval_augment = eval_augment(c, d.train.features);
  to.cuda_graph = c.cuda_graph == "on"    ? train::TrainerOptions::CudaGraph::kOn
                  : c.cuda_graph == "off" ? train::TrainerOptions::CudaGraph::kOff
                                          : train::TrainerOptions::CudaGraph::kAuto;
  to.checkpoint_every = c.checkpoint_every;
  const std::int64_t ranks = comm ? comm->size() : 1;
  // data::groups_of: --batch-size or --accumulate near 2^63 must not overflow the counts.
  const std::int64_t rows = data::groups_of(d.train.rows, ranks);  // DistributedSampler pads
  const std::int64_t batches = data::groups_of(rows, c.batch_size, c.drop_last);
  if (batches == 0)
    throw UsageError("--drop-last with --batch-size " + std::to_string(c.batch_size) +
                     " leaves no full batch of the " + std::to_string(rows) +
                     (ranks > 1 ? " training rows of a rank" : " training rows") +
                     ": give a smaller batch size or keep the last batch");
  const std::int64_t per_epoch = data::groups_of(batches, c.accumulate);  // optimizer steps
  if (c.warmup > 0 && c.warmup >= c.epochs * per_epoch)
    throw UsageError("--warmup " + std::to_string(c.warmup) + " is not shorter than the run (" +
                     std::to_string(c.epochs) + " epochs x " + std::to_string(per_epoch) +
                     " steps): the learning rate would never reach --lr");
  try {
    to.schedule = make_schedule(c, per_epoch);
  } catch (const Error& e) {  // its arguments are the flags' (a cycle too short for its phases)
    throw UsageError("--schedule " + c.schedule + ": " + e.what());
  }
  return to;
}

}  // namespace cutrain::tools
