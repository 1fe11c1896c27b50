// Resuming a run: Trainer::resume (the checkpoint, the schedule's state, the step counts and the
// world size, the data spec: Note [data spec on resume]) and the data-order check a mid-epoch
// resume must pass (Note [mid-epoch resume]).
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/train/data_spec.hpp"
#include "cutrain/train/trainer.hpp"
#include "src/train/trainer_impl.hpp"

namespace cutrain::train {
namespace {

// The "schedule.<key>" entries of a checkpoint's metadata, prefix removed.
optim::LrSchedule::State schedule_state(const std::map<std::string, std::string>& meta) {
  optim::LrSchedule::State out;
  for (const auto& [key, value] : meta)
    if (key.starts_with(detail::kSchedulePrefix))
      out[key.substr(std::strlen(detail::kSchedulePrefix))] = value;
  return out;
}

}  // namespace

// Note [mid-epoch resume]: a checkpoint taken inside an epoch continues at its next batch of
// the same shuffled order, which only the same data, batch size, accumulation, seed and
// shuffling reproduce; with any other the resumed epoch would train on some samples twice and
// skip others, silently. Such a resume is refused, naming what changed. At an epoch boundary
// the next epoch draws a fresh order anyway, so changes are allowed there.
void detail::check_same_order(const TrainState& st, const TrainState::DataOrder& now) {
  const TrainState::DataOrder& was = st.order;
  if (st.batch == 0 || was.batch_size == 0 || was == now) return;
  std::string changed;
  auto field = [&](const char* name, auto a, auto b) {
    if (a == b) return;
    changed += (changed.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(a) +
               " -> " + std::to_string(b);
  };
  field("training rows", was.rows, now.rows);
  field("batch_size", was.batch_size, now.batch_size);
  field("accumulate_steps", was.accumulate, now.accumulate);
  field("seed", was.seed, now.seed);
  field("shuffle", static_cast<int>(was.shuffle), static_cast<int>(now.shuffle));
  field("drop_last", static_cast<int>(was.drop_last), static_cast<int>(now.drop_last));
  CUTRAIN_FAIL("the checkpoint was taken after batch ", st.batch, " of epoch ", st.epoch + 1,
               ", whose remaining batches depend on the data order it was drawn with, and this "
               "run changes it (",
               changed,
               "): resume with the data and options it was written with, or from a checkpoint "
               "at an epoch boundary");
}

namespace {

// Note [data spec on resume] (cutrain/train/data_spec.hpp): the run's data against the
// checkpoint's, when both are described.
void check_data_spec(const std::map<std::string, std::string>& saved,
                     const std::map<std::string, std::string>& now, const std::string& path) {
  const auto then = saved.find(kDataSpecKey);
  const auto run = now.find(kDataSpecKey);
  if (then == saved.end() || run == now.end()) return;
  const std::string why = DataSpec::from_json(run->second, "TrainerOptions::checkpoint_metadata")
                              .differs_from(DataSpec::from_json(then->second, path));
  CUTRAIN_CHECK(why.empty(), path, ": trained on data prepared otherwise - this run gives ", why,
                "; resume with the data and preparation it was trained with");
}

}  // namespace

void Trainer::resume(const std::string& checkpoint_path) {
  Impl& im = *impl_;
  if (!im.best_params) {
    im.best_params = std::make_unique<Arena>(model_.parameters().like());
    im.best_buffers = std::make_unique<Arena>(model_.buffers().like());
  }
  // Note [schedule state]: a metric-driven schedule's state travels as "schedule.*" metadata;
  // it is checked with everything else before the checkpoint is applied.
  optim::LrSchedule* schedule = options_.schedule.get();
  optim::LrSchedule::State saved;
  state_ = load_checkpoint(
      checkpoint_path, model_, &optimizer_, nullptr,
      {im.best_params.get(), im.best_buffers.get(), im.average ? &im.average->average() : nullptr},
      [&](const std::map<std::string, std::string>& meta) {
        check_data_spec(meta, options_.checkpoint_metadata, checkpoint_path);
        saved = schedule_state(meta);
        if (schedule != nullptr && !saved.empty()) schedule->load_state(saved, /*apply=*/false);
      });
  if (schedule != nullptr && !saved.empty()) schedule->load_state(saved);
  if (!state_.has_best_weights) {
    im.best_params.reset();
    im.best_buffers.reset();
  }
  CUTRAIN_CHECK(state_.step == optimizer_.applied_steps() + optimizer_.skipped_steps(),
                checkpoint_path, ": inconsistent step counts");
  const std::int64_t world = options_.communicator ? options_.communicator->size() : 1;
  CUTRAIN_CHECK(state_.world_size == world, checkpoint_path, ": written by a run on ",
                state_.world_size, " rank(s), resumed on ", world,
                "; the shuffled sample order depends on the number of ranks, so resume on ",
                state_.world_size, " (or load its weights with --init-from to start afresh)");
  torn_epoch_ = 0;  // Note [a fit that throws]: the model, optimizer and state_ agree again
}

}  // namespace cutrain::train
