#pragma once
// The trainer's state beside its public members, shared by src/train/trainer.cpp (fit, resume)
// and src/train/trainer_eval.cpp.

#include <memory>
#include <utility>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/clip.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/error.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/stream.hpp"
#include "cutrain/train/trainer.hpp"
#include "kernels/data/augment.cuh"
#include "src/io/file_lock.hpp"
#include "src/train/gradient_accumulator.hpp"
#include "src/train/inference.hpp"
#include "src/train/step_graph.hpp"
#include "src/train/weight_average.hpp"

namespace cutrain::train {

namespace detail {
// fit()'s checks of its data and options against each other and the resumed run (loss,
// augmentation, monitor); records this run's in `state`. Throws cutrain::Error naming the
// mismatch and the fix (src/train/trainer_setup.cpp).
void check_fit(const TrainerOptions& o, TrainState& state, const nn::Sequential& model,
               const data::Dataset& train, const data::Dataset* val);
// Note [one run per checkpoint] (src/io/file_lock.hpp): the locks of the files a fit writes as it
// goes - o.checkpoint_path and o.metrics_path - on the rank that writes them (`lead`); none for a
// device or pipe (written in place). Throws cutrain::Error while another run holds one.
std::vector<std::unique_ptr<io::FileLock>> lock_outputs(const TrainerOptions& o, bool lead);
// Note [running statistics of rank 0] (src/train/trainer_setup.cpp): every rank takes rank 0's
// buffers; nothing without several ranks. A collective: every rank calls it at the same point.
void take_rank0_statistics(nn::Sequential& model, dist::Communicator* comm);
// Note [synchronized batch statistics]: whether a fit with `o` sums BatchNorm's statistics over
// its ranks (only several ranks have other rows to sum).
inline bool synchronizes_batchnorm(const TrainerOptions& o) {
  return o.sync_batchnorm && o.communicator != nullptr && o.communicator->size() > 1;
}
// The model as this rank's replica for one fit: Note [replica rows] (the loader deals this rank
// every world-th row of each global batch; dropout and the augmentation number their draws by
// the global row) and, with `sync_batchnorm` (synchronizes_batchnorm's), Note [synchronized batch
// statistics] - undone at the end of the fit, so that a later training forward on one rank
// alone does not wait for the others.
class RankBinding {
 public:
  RankBinding(nn::Sequential& model, dist::Communicator* comm, bool sync_batchnorm);
  ~RankBinding();
  RankBinding(const RankBinding&) = delete;
  RankBinding& operator=(const RankBinding&) = delete;

 private:
  nn::Sequential& model_;
};
}  // namespace detail

struct Trainer::Impl {
  Impl(float label_smoothing, std::vector<float> class_weights)
      : losses{nn::SoftmaxCrossEntropy(label_smoothing, std::move(class_weights)), {}} {}
  Stream stream;
  // Cross-entropy for classification data (labels), MSE for regression data (targets): the
  // loss follows the data (src/train/inference.hpp).
  detail::Losses losses;

  const nn::Loss& compute_loss(const nn::Matrix& out, const data::Batch& b, nn::Matrix* grad,
                               NativeStream s, float* record = nullptr,
                               const float* grad_seed = nullptr) {
    return losses.compute(out, b, grad, s, record, grad_seed);
  }
  std::unique_ptr<GradClipper> clipper;
  Buffer grad;         // dlogits, [batch, classes]
  Buffer step_losses;  // per-step mean losses of the epoch (device)
  Buffer step_norms;   // per-step pre-clip norms of the epoch (device)
  // Note [epoch records on the device]: the batch's loss and norm, and its slot in the two above.
  struct BatchRecord {
    float loss = 0;
    float norm = 0;
    std::int64_t slot = 0;
    std::int64_t epoch = 0;  // the epoch of the batch at `slot` (Note [augmentation on the device])
  };
  Buffer record;  // one BatchRecord (device)
  BatchRecord* batch_record() { return record.as<BatchRecord>(); }
  Buffer augmented;  // the training batch after data::Augment, [max batch rows, features]
  // Note [augmentation on the device]: sizes `augmented` for a fit and says where its draws come
  // from - the epoch and slot of the batch record; epoch == nullptr when `a` is off.
  rules::AugmentArgs prepare_augment(const data::Augment& a, std::uint64_t seed,
                                     const nn::Replica& replica, std::int64_t batches_per_epoch,
                                     std::int64_t max_rows, std::int64_t features, Device device);
  Buffer eval_labels;
  std::unique_ptr<Arena> best_params, best_buffers;
  std::unique_ptr<detail::GradientAccumulator> accumulator;  // Note [gradient accumulation]
  std::unique_ptr<detail::WeightAverage> average;            // Note [weight averaging]
  detail::StepGraph graph;                                   // Note [the step as one CUDA graph]
};

namespace detail {

// Checkpoint metadata "schedule.<key>": the LR schedule's state (Note [schedule state]).
inline constexpr const char* kSchedulePrefix = "schedule.";

// Note [mid-epoch resume] (src/train/resume.cpp): refuses, naming what changed, a state taken
// mid-epoch whose data order differs from `now`.
void check_same_order(const TrainState& st, const TrainState::DataOrder& now);

}  // namespace detail
}  // namespace cutrain::train
