#include "cutrain/train/trainer.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>

#include "cutrain/data/loader.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/layers.hpp"
#include "cutrain/nn/residual.hpp"
#include "src/data/augment.hpp"
#include "src/nn/backend.hpp"
#include "src/train/batchnorm_rows.hpp"
#include "src/train/fit_guard.hpp"
#include "src/train/metrics_writer.hpp"
#include "src/train/parameter_copy.hpp"
#include "src/train/progress.hpp"
#include "src/train/step_results.hpp"
#include "src/train/trainer_impl.hpp"
#include "src/train/training_rows.hpp"

namespace cutrain::train {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

FitResult Trainer::fit(const data::Dataset& train, const data::Dataset* val) {
  CUTRAIN_CHECK(torn_epoch_ == 0, "Trainer::fit: the last fit() ended by an error in epoch ",
                torn_epoch_,
                ", which left the model and optimizer past the position state() records; "
                "resume() from a checkpoint (or train a new model) before training on");
  detail::check_fit(options_, state_, model_, train, val);
  const bool by_accuracy = options_.monitor == TrainerOptions::Monitor::kValAccuracy;
  Impl& im = *impl_;
  const Device device = model_.device();
  const NativeStream s = im.stream.native();
  dist::Communicator* comm = options_.communicator;
  const bool lead = comm == nullptr || comm->rank() == 0;  // only rank 0 prints and writes
  state_.world_size = comm ? comm->size() : 1;
  const auto output_locks = detail::lock_outputs(options_, lead);  // while it may write them
  const detail::RankBinding ranks(model_, comm, detail::synchronizes_batchnorm(options_));
  if (comm != nullptr && comm->size() > 1 && state_.epoch == 0) {
    comm->broadcast(model_.parameters());  // every rank starts from rank 0's weights
    comm->broadcast(model_.buffers());
  }
  data::Loader loader(train, device,
                      {.batch_size = options_.batch_size,
                       .shuffle = options_.shuffle,
                       .drop_last = options_.drop_last,
                       .seed = options_.seed,
                       .rank = comm ? comm->rank() : 0,
                       .world = comm ? comm->size() : 1,
                       .resident = options_.resident_data});
  const std::int64_t per_epoch = loader.batches_per_epoch();
  // drop_last with a batch larger than the data trains nothing: epochs of no step, NaN losses.
  CUTRAIN_CHECK(per_epoch > 0 || options_.epochs == 0, "batch_size = ", options_.batch_size,
                " with drop_last leaves no full batch of the ", loader.rows_per_epoch(),
                " training rows", (comm != nullptr && comm->size() > 1 ? " of this rank" : ""),
                ": choose a smaller batch size or keep the last batch");
  CUTRAIN_CHECK(options_.epochs <=
                    std::numeric_limits<std::int64_t>::max() / std::max<std::int64_t>(1, per_epoch),
                "epochs = ", options_.epochs, " x ", per_epoch,
                " batches per epoch overflows the step count");
  // Said before the first step rather than in the middle of epoch 1.
  detail::check_batchnorm_rows(model_, loader.rows_per_epoch(), options_.batch_size,
                               options_.drop_last);
  std::vector<dist::GradientBucket> buckets;
  if (comm != nullptr && options_.bucket_bytes > 0)
    buckets = dist::plan_buckets(model_.gradients().layout(), model_.layer_parameters(),
                                 std::max<std::size_t>(1, options_.bucket_bytes / sizeof(float)));
  const std::int64_t classes = model_.output_features();
  im.grad =
      Buffer(static_cast<std::size_t>(loader.max_batch_rows() * classes) * sizeof(float), device);
  im.step_losses = Buffer(static_cast<std::size_t>(per_epoch) * sizeof(float), device);
  im.step_norms = Buffer(static_cast<std::size_t>(per_epoch) * sizeof(float), device);
  // Entries not at a step's end are never written (Note [gradient accumulation]): zeros.
  im.step_norms.zero(device.is_cpu() ? nullptr : s);
  im.record = Buffer(sizeof(Impl::BatchRecord), device);
  im.record.zero(device.is_cpu() ? nullptr : s);
  const rules::AugmentArgs augment =
      im.prepare_augment(options_.augment, options_.seed, model_.replica(), per_epoch,
                         loader.max_batch_rows(), train.features, device);
  const std::int64_t accumulate = options_.accumulate_steps;
  const TrainState::DataOrder order{.rows = train.rows,
                                    .batch_size = options_.batch_size,
                                    .accumulate = accumulate,
                                    .seed = options_.seed,
                                    .shuffle = options_.shuffle,
                                    .drop_last = options_.drop_last};
  detail::check_same_order(state_, order);
  state_.order = order;
  if (accumulate > 1 && !im.accumulator)
    im.accumulator = std::make_unique<detail::GradientAccumulator>(model_.gradients());
  detail::MetricsWriter metrics(lead ? options_.metrics_path : std::string(), state_.epoch);
  const bool tty = lead && options_.progress && ::isatty(STDERR_FILENO);
  FitResult result;
  model_.train();
  const detail::ParameterCopy parameter_copy(model_, optimizer_);  // Note [16-bit compute copy]
  const detail::TrainingRows training_rows(model_,
                                           loader.max_batch_rows());  // Note [dropout stream]
  // Note [the step as one CUDA graph].
  const std::string blocker = cuda_graph_blocker(model_, options_);
  CUTRAIN_CHECK(options_.cuda_graph != TrainerOptions::CudaGraph::kOn || blocker.empty(),
                "Trainer: cuda_graph = on, but ", blocker);
  const bool graphed = options_.cuda_graph != TrainerOptions::CudaGraph::kOff && blocker.empty();
  // This fit's buffers (records, logit gradients, the loader's) are new: so is the graph.
  im.graph.reset(options_.cuda_graph == TrainerOptions::CudaGraph::kOn);
  const std::int64_t launches_before = im.graph.launches();
  auto say_step_path = [&] {
    result.graph_steps = im.graph.launches() - launches_before;
    result.graph_nodes = static_cast<std::int64_t>(im.graph.nodes());
    result.step_path = im.graph.path(blocker, graphed, result.graph_steps);
  };

  const bool multi_rank = comm != nullptr && comm->size() > 1;
  // Saves the current state: at an epoch boundary (state_.batch == 0) or mid-epoch.
  auto save = [&] {
    if (!lead || options_.checkpoint_path.empty()) return;
    std::map<std::string, std::string> meta = options_.checkpoint_metadata;
    if (options_.schedule)
      for (const auto& [key, value] : options_.schedule->state())
        meta[std::string(detail::kSchedulePrefix) + key] = value;
    save_checkpoint(options_.checkpoint_path, model_, &optimizer_, state_, meta,
                    {state_.has_best ? im.best_params.get() : nullptr, im.best_buffers.get(),
                     im.average ? &im.average->average() : nullptr});
  };

  detail::TornGuard torn(torn_epoch_);  // Note [a fit that throws]
  // Note [resume after an early stop]: the last checkpoint of a run whose patience ran out holds
  // bad_epochs = patience at an epoch's end. Resumed with the same patience (a job requeued after
  // it was killed while writing its results, --resume auto), the run is over: fit() trains no
  // epoch and ends as the stopped run did - restoring the best weights - instead of training on
  // past its stop. A larger patience continues it.
  const bool patience_spent = options_.patience > 0 && state_.has_best && state_.batch == 0 &&
                              state_.bad_epochs >= options_.patience;
  result.stopped_early = patience_spent;
  const bool trains = state_.epoch < options_.epochs && !patience_spent;
  for (std::int64_t epoch = state_.epoch; trains && epoch < options_.epochs; ++epoch) {
    torn.running(epoch);  // from here state_ may lag the model until the epoch is recorded
    // Note [mid-epoch resume]: a checkpoint taken after `first` batches of this epoch restarts
    // the loader at batch `first` of the same order and restores the epoch's step results.
    const std::int64_t first = state_.batch;
    CUTRAIN_CHECK(first < per_epoch || per_epoch == 0, "the checkpoint was taken after batch ",
                  first, " of an epoch that now has ", per_epoch,
                  " batches: resume with the data and batch size it was written with");
    CUTRAIN_CHECK(first % accumulate == 0, "the checkpoint was taken after batch ", first,
                  ", inside a step of accumulate_steps = ", accumulate,
                  ": resume with the accumulate_steps it was written with");
    for (auto& c : callbacks_) c->on_epoch_begin(epoch + 1);
    const auto t0 = Clock::now();
    const std::int64_t skipped_before = optimizer_.skipped_steps() - state_.epoch_skipped;
    loader.start_epoch(static_cast<std::uint64_t>(epoch), first);
    if (first > 0) {
      // Note [step losses of every rank]: this rank's row (the only row of a 1-row file).
      const std::size_t row =
          state_.epoch_losses.size() > static_cast<std::size_t>(first) && comm != nullptr
              ? static_cast<std::size_t>(comm->rank())
              : 0;
      copy_bytes(im.step_losses.data(), device,
                 state_.epoch_losses.data() + row * static_cast<std::size_t>(first), Device::cpu(),
                 static_cast<std::size_t>(first) * sizeof(float));
      copy_bytes(im.step_norms.data(), device, state_.epoch_norms.data(), Device::cpu(),
                 state_.epoch_norms.size() * sizeof(float));
    }
    // Note [epoch records on the device]: this epoch's records continue at slot `first`. The
    // stream is idle here (the last epoch ended with a read of its records).
    im.stream.synchronize();
    copy_bytes(&im.batch_record()->slot, device, &first, Device::cpu(), sizeof(first));
    copy_bytes(&im.batch_record()->epoch, device, &epoch, Device::cpu(), sizeof(epoch));
    state_.batch = 0;
    state_.epoch_skipped = 0;
    state_.epoch_losses.clear();
    state_.epoch_norms.clear();
    std::int64_t k = first;
    std::int64_t group_rows = 0;  // rows of the step's earlier batches (a group's so far)
    double shown_loss = kNaN;
    if (options_.schedule && !options_.schedule_per_iteration)
      optimizer_.set_lr(static_cast<float>(options_.schedule->lr(epoch)));
    while (auto b = loader.next(s)) {
      if (options_.schedule && options_.schedule_per_iteration)
        optimizer_.set_lr(static_cast<float>(options_.schedule->lr(state_.step)));
      // Note [gradient accumulation]: batches [j A, (j + 1) A) of the epoch make one step.
      const bool step_begins = k % accumulate == 0;
      const bool step_ends = (k + 1) % accumulate == 0 || k + 1 == per_epoch;
      if (step_begins) group_rows = 0;
      const std::int64_t rows_before = group_rows;
      // The batch's device work: what a CUDA graph captures (Note [the step as one CUDA
      // graph]), so nothing in it may depend on k but through its position in the step
      // (step_begins, step_ends) and rows_before, which a replayed position fixes.
      auto work = [&](const data::Batch& batch) -> const nn::Loss& {
        nn::Matrix g{im.grad.as<float>(), batch.rows, classes, device};
        // The batch's loss and the step's norm go to the epoch's records on the device, no
        // host wait (Note [epoch records on the device]).
        Impl::BatchRecord* record = im.batch_record();
        nn::Matrix x = batch.x;
        if (augment.epoch != nullptr) {
          x.data = im.augmented.as<float>();
          data::detail::augment_rows(device, augment, batch.x.data, batch.rows, x.data, s);
        }
        const nn::Loss& l =
            im.compute_loss(model_.forward(x, s), batch, &g, s, &record->loss,
                            optimizer_.device_loss_scale());  // Note [dynamic loss scale]
        Arena& grads = model_.gradients();
        if (step_begins && step_ends && !buckets.empty()) {
          std::size_t next = 0;  // buckets come in backward's order (last layer first)
          model_.backward(g, s, nullptr, [&](std::size_t layer) {
            for (; next < buckets.size() && buckets[next].ready_after_layer == layer; ++next)
              comm->start_mean(grads, buckets[next].ranges, s);
          });
          comm->finish_mean(grads, s);
        } else {
          model_.backward(g, s);
          if (!(step_begins && step_ends))
            im.accumulator->add(grads, step_begins, step_ends, batch.rows, rows_before, s);
          if (step_ends && comm != nullptr) comm->allreduce_mean(grads, s);  // one collective
        }
        if (step_ends) {
          // Clip and step: one launch on a GPU for small models (Note [clip and step in one
          // launch]); the step's pre-clip norm goes straight into the epoch's records.
          optimizer_.step(model_.parameters(), grads, *im.clipper, s, &record->norm);
          if (im.average) im.average->update(model_.parameters(), state_.ema_updates, s);
        }
        detail::record_step(device,
                            {&record->loss, step_ends ? &record->norm : nullptr,
                             im.step_losses.as<float>(), im.step_norms.as<float>(), &record->slot},
                            s);
        return l;
      };
      // Note [the step as one CUDA graph]: the graph of the batch's position, if it replays one.
      const std::optional<detail::StepGraph::Position> at =
          graphed ? detail::graph_position(step_begins, step_ends, b->rows, rows_before,
                                           options_.batch_size, accumulate)
                  : std::nullopt;
      const nn::Loss& batch_loss = at ? im.graph.run(*at, *b, s, model_, optimizer_, work,
                                                     // Note [weight averaging]: its count
                                                     im.average ? &state_.ema_updates : nullptr)
                                      : work(*b);
      group_rows += b->rows;
      if (step_ends) ++state_.step;
      ++k;
      for (auto& c : callbacks_) c->on_batch_end(epoch + 1, k);
      const bool periodic = step_ends && k < per_epoch && options_.checkpoint_every > 0 &&
                            state_.step % options_.checkpoint_every == 0;
      bool stop_here =
          step_ends && k < per_epoch && stop_requested_.load(std::memory_order_relaxed);
      // Note [stop on a signal] with several ranks: they agree at the periodic checkpoints, which
      // every rank reaches at the same step (and at the epoch's end, below).
      if (multi_rank) stop_here = periodic && comm->allreduce_sum(stop_here ? 1.0 : 0.0) > 0;
      if (periodic || stop_here) {
        // A mid-epoch checkpoint (Note [mid-epoch resume]): the position and the epoch's step
        // results so far. Reading them waits for the device - as saving the weights does.
        state_.batch = k;
        state_.epoch_skipped = optimizer_.skipped_steps() - skipped_before;
        state_.epoch_losses.resize(static_cast<std::size_t>(k));
        state_.epoch_norms.resize(static_cast<std::size_t>(k));
        copy_bytes(state_.epoch_losses.data(), Device::cpu(), im.step_losses.data(), device,
                   static_cast<std::size_t>(k) * sizeof(float), s);
        copy_bytes(state_.epoch_norms.data(), Device::cpu(), im.step_norms.data(), device,
                   static_cast<std::size_t>(k) * sizeof(float), s);
        im.stream.synchronize();
        // Note [step losses of every rank]: rank 0 saves every rank's losses (every rank
        // reaches this step, so the collective matches).
        if (multi_rank) state_.epoch_losses = comm->allgather(state_.epoch_losses);
        torn.recorded();  // a failed save leaves state_ true to the model: fit() again goes on
        save();
        if (stop_here) {
          stop_requested_.store(false, std::memory_order_relaxed);
          detail::take_rank0_statistics(model_, comm);  // every rank stops here
          result.interrupted = true;
          say_step_path();
          return result;  // state_ stays mid-epoch: fit() again continues from here
        }
        state_.batch = 0;
        state_.epoch_skipped = 0;
        state_.epoch_losses.clear();
        state_.epoch_norms.clear();
        torn.running(epoch);
      }
      if (options_.log_every > 0 && k % options_.log_every == 0) shown_loss = batch_loss.value();
      if (tty && (k % 10 == 0 || k == per_epoch))
        detail::draw_progress(epoch + 1, k, per_epoch, shown_loss, k * options_.batch_size,
                              std::chrono::duration<double>(Clock::now() - t0).count());
    }
    const double issued = std::chrono::duration<double>(Clock::now() - t0).count();
    // The epoch's one read of its step results.
    std::vector<float> losses(static_cast<std::size_t>(k)), norms(static_cast<std::size_t>(k));
    copy_bytes(losses.data(), Device::cpu(), im.step_losses.data(), device, losses.size() * 4, s);
    copy_bytes(norms.data(), Device::cpu(), im.step_norms.data(), device, norms.size() * 4, s);
    im.stream.synchronize();
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = optimizer_.lr();
    detail::StepSums sums = detail::sum_steps(losses, norms, accumulate);
    if (comm != nullptr) {  // means over every rank's steps (norms are of the averaged grads)
      sums.loss = comm->allreduce_sum(sums.loss);
      sums.norm = comm->allreduce_sum(sums.norm);
      sums.losses =
          static_cast<std::int64_t>(comm->allreduce_sum(static_cast<double>(sums.losses)));
      sums.norms = static_cast<std::int64_t>(comm->allreduce_sum(static_cast<double>(sums.norms)));
    }
    m.train_loss = sums.losses > 0 ? sums.loss / static_cast<double>(sums.losses) : kNaN;
    m.grad_norm = sums.norms > 0 ? sums.norm / static_cast<double>(sums.norms) : kNaN;
    m.skipped_steps = optimizer_.skipped_steps() - skipped_before;
    m.loss_scale = optimizer_.loss_scale_state().scale;
    // Note [divergence ends the run]: once the weights (or the data) produce inf/NaN logits the
    // non-finite guard skips every step and nothing recovers; training on would write NaN
    // predictions and metrics as if they were data. An epoch that ends in a streak of skipped
    // steps (detail::diverged_streak: 8, or half the epoch's steps) stops the run here - before
    // validation, the metrics file or the checkpoint - naming the epoch and the step the streak
    // began at. An isolated skipped step (one bad batch) does not. With dynamic loss scaling
    // (Note [dynamic loss scale]) a streak is first the scaler's business - each skip halves S
    // until S x g fits - and counts as divergence once S has fallen to 1 or below: then the true
    // gradient itself is not finite.
    if (const std::int64_t streak = detail::diverged_steps(norms, accumulate);
        streak > 0 && m.loss_scale <= 1.0) {
      CUTRAIN_FAIL("training diverged in epoch ", epoch + 1, ": the loss or gradient is not finite",
                   " from step ", state_.step - streak + 1, " on (", m.skipped_steps, " of the ",
                   "epoch's steps skipped by the non-finite guard); lower the learning rate (now ",
                   m.lr, "), clip gradients (clip_norm), or check the data");
    }
    detail::take_rank0_statistics(model_, comm);  // Note [running statistics of rank 0]
    m.val_loss = m.val_accuracy = kNaN;
    if (val != nullptr && val->rows > 0) {
      const EvalResult e = evaluate_averaged(*val);
      // A model whose outputs overflow (finite weights grown huge: no step skipped) diverged too.
      CUTRAIN_CHECK(std::isfinite(e.loss), "training diverged in epoch ", epoch + 1,
                    ": the validation loss is ", e.loss, " (training loss ", m.train_loss,
                    "); lower the learning rate (now ", m.lr,
                    "), clip gradients (clip_norm), or check the data");
      m.val_loss = e.loss;
      m.val_accuracy = e.accuracy;
    }
    m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    m.issue_seconds = issued;
    m.samples_per_second = static_cast<double>(train.rows) / m.seconds;
    if (tty) detail::clear_progress();
    if (lead && options_.progress) detail::print_epoch(m);
    metrics.write(m);
    result.history.push_back(m);
    for (auto& c : callbacks_) c->on_epoch_end(m);
    if (options_.schedule)
      options_.schedule->observe(std::isnan(m.val_loss) ? m.train_loss : m.val_loss);
    state_.epoch = epoch + 1;

    // Early stopping on the monitored validation figure.
    bool stop = false;
    const double watched = by_accuracy ? m.val_accuracy : m.val_loss;
    if (options_.patience > 0 && !std::isnan(watched)) {
      const bool better =
          !state_.has_best || (by_accuracy ? watched > state_.best_metric + options_.min_delta
                                           : watched < state_.best_metric - options_.min_delta);
      if (better) {
        state_.best_metric = watched;
        state_.has_best = true;
        state_.bad_epochs = 0;
        state_.best_epoch = m.epoch;
        if (options_.restore_best) {
          if (!im.best_params) {
            im.best_params = std::make_unique<Arena>(model_.parameters().like());
            im.best_buffers = std::make_unique<Arena>(model_.buffers().like());
          }
          // The weights validation judged: the average's when averaging.
          im.best_params->copy_from(im.average && state_.ema_updates > 0 ? im.average->average()
                                                                         : model_.parameters());
          im.best_buffers->copy_from(model_.buffers());
        }
      } else if (++state_.bad_epochs >= options_.patience) {
        stop = true;
      }
    }
    torn.recorded();
    save();
    if (stop) {
      result.stopped_early = true;
      break;
    }
    // A stop asked for during the epoch's last step (or, with several ranks, at any point of
    // it: agreed on here so that every rank stops after the same epoch).
    double stop_votes = stop_requested_.load(std::memory_order_relaxed) ? 1.0 : 0.0;
    if (multi_rank) stop_votes = comm->allreduce_sum(stop_votes);
    if (stop_votes > 0 && epoch + 1 < options_.epochs) {
      stop_requested_.store(false, std::memory_order_relaxed);
      result.interrupted = true;
      break;
    }
  }
  // A fit with no epoch left to train (epochs = 0, or a resume at its last epoch) still leaves
  // checkpoint_path holding where the run stands, as every other end of fit() does: a CLI run
  // given --save (a resume copied to a new file) wrote nothing.
  if (!trains) save();
  result.best_epoch = state_.best_epoch;
  // restore_best: the weights validation judged best, whether the patience ran out or the epochs
  // did (Keras' restore_best_weights long restored them only on an early stop, which its users
  // reported as a bug: the last epoch's weights came back after a run that never stopped early).
  // Not after an interruption: fit() again must continue from where it stopped.
  if (!result.interrupted && options_.restore_best && state_.has_best && im.best_params &&
      state_.best_epoch != state_.epoch) {
    model_.parameters().copy_from(*im.best_params);
    model_.buffers().copy_from(*im.best_buffers);
  }
  say_step_path();
  return result;
}

}  // namespace cutrain::train
