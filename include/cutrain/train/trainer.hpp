#pragma once
// The trainer: epochs over the streaming loader, LR schedule, clipping and the non-finite
// guard, evaluation, early stopping, callbacks, progress, metrics files and checkpoints.
// The loss follows the data: a data set with labels trains with softmax cross-entropy
// (torch.nn.CrossEntropyLoss, the model's outputs are logits), one with float targets with mean
// squared error (torch.nn.MSELoss, mean over every element; one target per model output).
//
// Synchronization: a training step issues its work on the trainer's stream and never waits for
// the GPU. Per-step losses and gradient norms are copied device-to-device into per-epoch arrays
// and read once at the end of the epoch. Deliberate syncs: log_every > 0 reads the loss every k
// steps (for the progress line); evaluation reads its logits; the epoch end reads its arrays.
//
// LR schedules step per iteration (lr(k), k = optimizer steps issued) or per epoch (lr(e)). A
// step skipped by the non-finite guard still counts in k within its epoch (the host does not
// wait to learn of it); the skipped count is reported in the epoch's metrics.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cutrain/data/augment.hpp"
#include "cutrain/data/dataset.hpp"
#include "cutrain/dist/communicator.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"
#include "cutrain/optim/schedule.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "cutrain/train/confusion.hpp"
#include "cutrain/train/inference.hpp"
#include "cutrain/train/regression_metrics.hpp"

namespace cutrain::train {

/// One epoch's record: learning rate, losses, accuracy, gradient norm, skipped steps and timing.
struct EpochMetrics {
  std::int64_t epoch = 0;          ///< 1-based
  double lr = 0;                   ///< the learning rate at the epoch's end
  double train_loss = 0;           ///< mean training loss over the epoch's batches
  double val_loss = 0;             ///< NaN without validation data
  double val_accuracy = 0;         ///< NaN without validation data, or for regression
  double grad_norm = 0;            ///< mean pre-clip global norm over the epoch's steps
  std::int64_t skipped_steps = 0;  ///< steps the non-finite guard skipped
  /// The optimizer's loss scale S at the epoch's end (Optimizer::enable_loss_scaling, Note
  /// [dynamic loss scale]); 1 without loss scaling.
  double loss_scale = 1;
  double seconds = 0;             ///< wall time of the epoch's training
  double samples_per_second = 0;  ///< training samples over seconds
  /// Host time until the epoch's last step was enqueued. On a GPU nothing in a step waits for the
  /// device, so when this is close to `seconds` the host (launches, the loader) sets the pace,
  /// and when it is much smaller the GPU does.
  double issue_seconds = 0;
};

/// The format of a metrics file (TrainerOptions::metrics_path), by its name: CSV for `.csv`, JSON
/// lines for `.jsonl` (and `.json`); kUnknown for any other name, which fit() refuses.
enum class MetricsFormat { kUnknown, kCsv, kJsonLines };
MetricsFormat metrics_format(std::string_view path);

/// Hooks a Trainer calls at epoch and batch boundaries.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_epoch_begin(std::int64_t /*epoch*/) {}  ///< before epoch `epoch` (1-based)
  virtual void on_batch_end(std::int64_t /*epoch*/, std::int64_t /*batch*/) {
  }  ///< after batch `batch` (1-based) is issued
  virtual void on_epoch_end(const EpochMetrics& /*m*/) {}  ///< with the epoch's record
};

/// Everything a Trainer run is configured by: epochs, batch size, clipping, schedule, validation,
/// checkpoints.
struct TrainerOptions {
  std::int64_t epochs = 10;      ///< total epochs (a resumed run continues up to this)
  std::int64_t batch_size = 64;  ///< samples per batch (per rank)
  /// Gradient accumulation (Note [gradient accumulation], src/train/gradient_accumulator.hpp):
  /// this many batches of batch_size make one optimizer step, whose gradient is the mean over
  /// all their samples - one batch of accumulate_steps x batch_size samples in the memory of one
  /// batch. The clip, the all-reduce (one, even with bucket_bytes) and the step run once per
  /// group; checkpoint_every and a per-iteration schedule count optimizer steps.
  std::int64_t accumulate_steps = 1;
  bool shuffle = true;     ///< a new seeded permutation each epoch
  bool drop_last = false;  ///< drop each epoch's last partial batch (DataLoader's drop_last)
  std::uint64_t seed = 0;  ///< the shuffle's seed
  float clip_norm = 0;     ///< 0: no clipping (the non-finite guard is always on)
  std::shared_ptr<optim::LrSchedule> schedule;  ///< null: the optimizer's lr stays
  bool schedule_per_iteration = true;           ///< the schedule counts steps (else epochs)
  std::int64_t patience = 0;  ///< early stopping: epochs without improvement of `monitor`; 0: off
  double min_delta = 0;       ///< the least change of `monitor` that counts as an improvement
  /// What early stopping and restore_best judge (Keras' EarlyStopping(monitor=...)): the
  /// validation loss (lower is better) or, for labels, the validation accuracy (higher is
  /// better). A resumed run must monitor what its checkpoint did.
  enum class Monitor { kValLoss, kValAccuracy };
  Monitor monitor = Monitor::kValLoss;  ///< see Monitor
  /// With patience > 0, at the end of fit() - an early stop or the last epoch, not an interruption
  /// - put the weights (and BatchNorm statistics) of the epoch with the best `monitor` value back
  /// into the model (FitResult::best_epoch says which; the last checkpoint keeps the last epoch's,
  /// to resume).
  bool restore_best = true;
  std::int64_t log_every = 0;  ///< steps between loss reads for the progress line; 0: none
  std::string metrics_path;    ///< .csv or .jsonl (metrics_format); empty: none
  /// Saved after every epoch (and by a fit() with no epoch left to train: the state it was given);
  /// empty: none.
  std::string checkpoint_path;
  /// > 0: also every this many optimizer steps within an epoch (needs checkpoint_path); a resume
  /// continues at the next batch of the same epoch, exactly as if never stopped (weights and
  /// that epoch's metrics; with several ranks, every rank's step losses are kept, Note [step
  /// losses of every rank]). With several ranks a stop (request_stop) is agreed on at the next of
  /// these checkpoints, or at the epoch's end.
  std::int64_t checkpoint_every = 0;
  std::map<std::string, std::string> checkpoint_metadata;  ///< e.g. the CLI's configuration
  bool progress = true;       ///< a bar on a TTY, one line per epoch otherwise
  float label_smoothing = 0;  ///< CrossEntropyLoss(label_smoothing=), in [0, 1]
  /// Empty, or one weight per class (the model's outputs): the cross-entropy weighs each sample by
  /// its class's weight and takes the mean over the batch's total weight
  /// (CrossEntropyLoss(weight=); data::balanced_class_weights() gives scikit-learn's "balanced").
  /// evaluate()'s loss is then the weighted mean over the whole set. Micro-batches
  /// (accumulate_steps) and ranks each contribute their own weighted mean, combined by rows as ever
  /// - as PyTorch's loss / A recipe and DDP do.
  std::vector<float> class_weights;
  /// Weight averaging (Note [weight averaging], src/train/weight_average.hpp): in (0, 1), keep an
  /// exponential moving average of the parameters, ema = lerp(ema, p, 1 - ema_decay) after every
  /// optimizer step (AveragedModel with get_ema_multi_avg_fn). Validation and early stopping then
  /// judge the averaged weights; apply_ema() puts them into the model. 0: off.
  float ema_decay = 0;
  /// Data parallelism (include/cutrain/dist/communicator.hpp): each rank streams its shard
  /// (batch_size per rank), gradients are averaged over the ranks before clipping and the
  /// step, evaluation metrics are summed over the ranks, and only rank 0 prints and writes files.
  dist::Communicator* communicator = nullptr;
  /// 0: one all-reduce of the whole gradient arena after backward. > 0: buckets of about this
  /// many bytes, each all-reduced as soon as backward has produced it, overlapping the rest of
  /// backward (Note [gradient buckets]; PyTorch DDP's bucket_cap_mb).
  std::size_t bucket_bytes = 0;
  /// With several ranks: every BatchNorm normalizes with the statistics of the global batch
  /// (torch.nn.SyncBatchNorm; Note [synchronized batch statistics], Sequential::
  /// set_batch_statistics_sum), so a W-rank run is the one-process run with the combined batch.
  /// Off: each rank's own rows (DDP's default). Nothing to do with one rank.
  bool sync_batchnorm = false;
  /// The training set on the model's device, batches gathered there (data::LoaderOptions::
  /// resident, Note [resident datasets]); the same batches as streaming, so the same result bit
  /// for bit. Evaluation still streams.
  bool resident_data = false;
  /// Random translation and flip of every training batch on its device (data::Augment, Note
  /// [augmentation on the device]); evaluation sees the data unchanged. Each row's draw depends
  /// on (seed, rank, epoch, batch, row) only, so a resume continues with the same images.
  data::Augment augment;
  /// What evaluation does to each row: with `eval_augment.flip`, the validation, the test
  /// evaluation and the predictions average each row's outputs with its mirror image's
  /// (data::EvalAugment, Note [test-time flips]) - early stopping and the monitor then judge the
  /// averaged model. Off by default.
  data::EvalAugment eval_augment;
  /// Note [the step as one CUDA graph] (src/train/step_graph.hpp): the training step of every
  /// full batch replayed from one captured CUDA graph after a short eager warm-up - the same
  /// bits as eager steps, one launch instead of about twenty. kAuto: on a GPU whenever the
  /// configuration allows it (cuda_graph_blocker), eager otherwise; kOn: fit() throws
  /// cutrain::Error naming what prevents it; kOff: always eager.
  enum class CudaGraph { kAuto, kOn, kOff };
  CudaGraph cuda_graph = CudaGraph::kAuto;  ///< auto: a graph on a GPU whenever it can be
};

/// Why the training step of `model` with `options` cannot run as one CUDA graph (the CPU,
/// gradient accumulation, several ranks), or empty if it can.
std::string cuda_graph_blocker(const nn::Sequential& model, const TrainerOptions& options);

/// What Trainer::fit did: every epoch's metrics, the best epoch, whether it stopped early or was
/// interrupted.
struct FitResult {
  std::vector<EpochMetrics> history;  ///< one record per epoch run
  std::int64_t best_epoch = 0;        ///< the best validation loss's epoch (patience > 0), else 0
  bool stopped_early = false;         ///< patience ran out
  bool interrupted = false;  ///< request_stop(): the state was checkpointed and fit() returned
  /// Note [the step as one CUDA graph]: "graph" when full batches' steps were replayed from a
  /// captured graph, else "eager: " and why (cuda_graph_blocker's reason, or "cuda_graph = off").
  std::string step_path;
  /// Batches run from a graph (under gradient accumulation each of a step's batches counts).
  std::int64_t graph_steps = 0;
  /// Operations in the captured graphs together (one per position in an accumulation group;
  /// 0: none captured).
  std::int64_t graph_nodes = 0;
};

/// Trains a Sequential with an optimizer over streamed mini-batches: evaluation, early stopping,
/// schedules, checkpoints that resume exactly.
class Trainer {
 public:
  /// Trains `model` with `optimizer` (both built on one device) as `options` say; both must
  /// outlive the Trainer.
  Trainer(nn::Sequential& model, optim::Optimizer& optimizer, TrainerOptions options);
  ~Trainer();

  void add_callback(std::shared_ptr<Callback> callback);  ///< called at epoch and batch boundaries
  /// Trains from the current state (epoch 0, or where resume() left off) up to options.epochs.
  /// Note [a fit that throws]: an error that ends fit() once an epoch has begun (a callback's, a
  /// diverged run's, a device's) leaves the model and optimizer past what state() records, so
  /// later fit() calls throw cutrain::Error until resume() restores a checkpoint. An error
  /// before training starts (the data's checks), or a checkpoint that could not be written once
  /// state() was brought up to date, leaves the trainer as it was: fit() again continues.
  FitResult fit(const data::Dataset& train, const data::Dataset* validation = nullptr);
  /// In eval mode, over a data set with labels: the mean softmax cross-entropy (with the
  /// trainer's label smoothing and class weights) and the accuracy; with regression targets: the
  /// mean squared error over every target element, and accuracy NaN.
  EvalResult evaluate(const data::Dataset& data);
  /// The model's outputs for every row of `data`, in its order, row-major [rows, outputs] on the
  /// host: logits for a classifier (softmax them for probabilities, argmax for the class),
  /// predictions for a regression model. Eval mode (no dropout, BatchNorm's running statistics),
  /// the model's current weights (apply_ema() first to predict with the average); `data` needs
  /// features only - labels and targets, if any, are not read. Each rank predicts all of `data`.
  std::vector<float> predict(const data::Dataset& data);
  /// predict() over a data set with labels, counted by true and predicted class
  /// (include/cutrain/train/confusion.hpp): per-class recall, precision and F1; the trace over the
  /// total is evaluate()'s accuracy.
  ConfusionMatrix confusion_matrix(const data::Dataset& data);
  /// predict() over a data set with regression targets, per target column: MSE, MAE and R^2
  /// (include/cutrain/train/regression_metrics.hpp); the MSEs' mean is evaluate()'s loss.
  std::vector<TargetMetrics> regression_metrics(const data::Dataset& data);
  /// The same as evaluate() for the averaged weights (ema_decay > 0; the model's own before the
  /// first step).
  EvalResult evaluate_averaged(const data::Dataset& data);
  /// The averaged parameters into the model (ema_decay > 0, after at least one step): what to
  /// evaluate, export or deploy after fit(). Training on afterwards continues from them. (After a
  /// fit() that restored its best epoch - restore_best - the model holds that epoch's average
  /// already; this would replace it with the last epoch's.)
  void apply_ema();
  /// Restores model, optimizer and position from a checkpoint written by fit().
  void resume(const std::string& checkpoint_path);
  /// Asks fit() to stop after the step in flight: it saves a checkpoint there (with
  /// checkpoint_path; mid-epoch if need be) and returns with FitResult::interrupted. Safe to call
  /// from a signal handler or another thread (one atomic store). With several ranks the stop is
  /// agreed on at the next periodic checkpoint (checkpoint_every) or the end of the epoch, so
  /// every rank stops at the same step - a preempted job (SIGTERM to every rank) loses at most
  /// checkpoint_every steps.
  void request_stop() noexcept { stop_requested_.store(true, std::memory_order_relaxed); }
  const TrainState& state() const {
    return state_;
  }  ///< where the run stands (what a checkpoint saves)

 private:
  struct Impl;
  nn::Sequential& model_;
  optim::Optimizer& optimizer_;
  TrainerOptions options_;
  TrainState state_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_requested_{false};
  /// Note [a fit that throws]: the epoch (1-based) an error ended fit() in; 0: none.
  std::int64_t torn_epoch_ = 0;
  static_assert(std::atomic<bool>::is_always_lock_free, "request_stop must be signal-safe");
};

}  // namespace cutrain::train
