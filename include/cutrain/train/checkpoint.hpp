#pragma once
// Training checkpoints in safetensors (include/cutrain/io/safetensors.hpp).
//
// Tensors: the model's parameters and buffers by name ("layers.{i}.weight", ...), each
// optimizer state as "optim.<state>.<parameter name>" (padding excluded), and, while early
// stopping holds a best epoch, its weights as "best.<name>" (so that a resumed run restores
// the best epoch of the whole run, not just of the part after the resume), and in a mid-epoch
// checkpoint "trainer.step_losses" ([batch] or [world_size, batch]) and "trainer.step_norms"
// ([batch]). String metadata: "format" = "cutrain-checkpoint-1", the training position (epoch,
// step, forward passes, optimizer step counts, early-stopping counters), the model summary, and
// whatever the caller adds (the run's configuration). Loading checks every name, shape and dtype
// against the model and optimizer and names the first mismatch.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"

namespace cutrain::train {

/// Where a run stands: epochs and steps done, early stopping's best value, the epochs' records;
/// saved in checkpoints.
struct TrainState {
  std::int64_t epoch = 0;  ///< completed epochs
  std::int64_t step = 0;   ///< optimizer steps issued
  double best_metric = 0;  ///< early stopping: the best value of `monitor` so far
  /// What best_metric measures (TrainerOptions::Monitor's name): "val_loss" or "val_accuracy";
  /// checkpoints from before it read as "val_loss".
  std::string monitor = "val_loss";
  /// The loss it trained with (e.g. "cross_entropy label_smoothing=0.1 class_weights=[1,2]", or
  /// "mse"): a resume with other loss options would change the objective mid-run and is refused.
  /// Empty in checkpoints from before it (not checked).
  std::string loss{};
  /// The augmentation it trained with (TrainerOptions::augment: "off", or "shift=2 flip=1
  /// image=[1, 28, 28]"): a resume with another would not continue the same run and is refused.
  /// Empty in checkpoints from before it (not checked).
  std::string augment{};
  /// How it evaluated (TrainerOptions::eval_augment: "plain", or "flip image=[1, 28, 28]", Note
  /// [test-time flips]): with validation data a resume with another would judge early stopping
  /// by another model and is refused. Empty in checkpoints from before it (not checked).
  std::string evaluation{};
  /// Whose statistics BatchNorm normalized with (Note [synchronized batch statistics]): "global"
  /// with TrainerOptions::sync_batchnorm on several ranks, else "rank"; a resume with the other
  /// would not continue the same run and is refused. Empty in checkpoints from before it.
  std::string batch_statistics{};
  std::int64_t bad_epochs = 0;    ///< epochs since the best one (patience)
  bool has_best = false;          ///< best_metric holds a value
  std::int64_t best_epoch = 0;    ///< the epoch (1-based) whose weights early stopping keeps
  bool has_best_weights = false;  ///< the file held "best.*" tensors (restored into BestWeights)
  /// Ranks that trained it: the sample order depends on it, so a resume needs the same number
  /// (checkpoints from before this field read as 1).
  std::int64_t world_size = 1;
  std::int64_t ema_updates = 0;  ///< steps taken into the weight average (0: none, or no averaging)
  /// Mid-epoch checkpoints (TrainerOptions::checkpoint_every, Trainer::request_stop): batches of
  /// the next epoch (number epoch + 1) already trained, with that partial epoch's per-step losses
  /// and pre-clip norms and its skipped steps, so the resumed epoch reports what an uninterrupted
  /// one would. 0 (and empty) at an epoch boundary.
  std::int64_t batch = 0;
  std::int64_t epoch_skipped = 0;  ///< skipped steps of the epoch in progress
  // Note [step losses of every rank]: each rank's step losses differ (its own shard), so a
  /// multi-rank checkpoint keeps all of them, rank-major (world_size x batch entries), and each
  /// rank resumes with its own row; the norms are of the averaged gradients, the same on every
  /// rank (batch entries). Without this the resumed epoch's train loss counted rank 0's losses
  /// once per rank. One row (batch entries) is also accepted: a single process, or a multi-rank
  /// file written before this note, whose one row (rank 0's) every rank takes.
  std::vector<float> epoch_losses{};
  std::vector<float> epoch_norms{};  ///< the epoch in progress's step norms
  /// The data order the epoch in progress draws its batches from (the Trainer's fit() sets it;
  /// metadata "order.*"). A mid-epoch resume must draw the same order to continue with the
  /// right samples, so fit() refuses one whose order differs (Note [mid-epoch resume]).
  /// batch_size 0: not recorded (checkpoints from before it).
  struct DataOrder {
    std::int64_t rows = 0;        ///< training samples
    std::int64_t batch_size = 0;  ///< per rank
    std::int64_t accumulate = 0;  ///< batches per optimizer step
    std::uint64_t seed = 0;       ///< shuffling seed
    bool shuffle = false;         ///< the loader shuffled
    bool drop_last = false;       ///< the loader dropped the last partial batch
    bool operator==(const DataOrder&) const = default;  ///< the same order
  } order{};                                            ///< the data order of the epoch in progress
};

inline constexpr const char* kCheckpointFormat = "cutrain-checkpoint-1";

/// The trainer's extra weights: early stopping's best ("best.<name>"; arenas with the model's
/// parameter and buffer layouts) and the parameters' moving average ("ema.<name>", Note [weight
/// averaging]; saved while TrainState::ema_updates > 0).
struct BestWeights {
  Arena* params = nullptr;   ///< the best epoch's parameters ("best.<name>")
  Arena* buffers = nullptr;  ///< the best epoch's buffers
  Arena* ema = nullptr;      ///< the parameters' moving average ("ema.<name>")
};

/// best: saved when both arenas are given.
void save_checkpoint(const std::string& path, nn::Sequential& model, optim::Optimizer* optimizer,
                     const TrainState& state,
                     const std::map<std::string, std::string>& extra_metadata = {},
                     const BestWeights& best = {});
/// Restores model (parameters, buffers, forward count) and optimizer; returns the position.
/// When the file holds best weights or a weight average and `best` has arenas for them, they are
/// restored there too.
/// All or nothing: every name, shape and metadata field is checked before anything is written,
/// so a refused file (cutrain::Error) leaves the model, optimizer and `best` as they were. A file
/// that records its modules (Note [architecture in exports]) must record `model`'s: the same
/// tensor shapes under another activation or dropout rate would train another model.
/// `check`, when given, sees the metadata after every built-in check and before anything is
/// written; it may throw to refuse the file (the trainer checks its schedule's state there).
TrainState load_checkpoint(
    const std::string& path, nn::Sequential& model, optim::Optimizer* optimizer,
    std::map<std::string, std::string>* metadata = nullptr, const BestWeights& best = {},
    const std::function<void(const std::map<std::string, std::string>&)>& check = {});

/// Parameters and buffers only (inference, fine-tuning, --init-from). Accepts cutrain's names
/// ("layers.0.weight") and torch.nn.Sequential's ("0.weight"); optimizer tensors are ignored.
/// All or nothing, as load_checkpoint.
void load_weights(const std::string& path, nn::Sequential& model);
// Note [architecture in exports]: the model a file describes - its "cutrain.modules" metadata,
/// written by export_torch, save_checkpoint and tools/cutrain_torch.py save_model (from a
/// torch.nn.Sequential) - built on `device` (Dropout's masks from `seed`) and loaded with the
/// file's weights (load_weights). Modules: Linear, BatchNorm1d, ReLU, LeakyReLU, Tanh, Sigmoid,
/// GELU (exact, approximate='none'), SiLU, Dropout, Conv2d, MaxPool2d, AvgPool2d,
/// AdaptiveAvgPool2d, BatchNorm2d, Flatten, Unflatten and cutrain_torch.Residual (a body of
/// these: x + body(x); with a shortcut of these too: shortcut(x) + body(x)). Another module, an
/// argument cutrain does not support (bias=False is supported; track_running_stats=False is not),
/// or weights that do not match is a cutrain::Error naming it; nothing is allocated for more
/// weights than the file holds.
nn::Sequential load_model(const std::string& path, Device device, std::uint64_t seed = 0);
/// torch.nn.Sequential's state_dict layout ("0.weight" [out, in], ..., BatchNorm's
/// num_batches_tracked as I64), so model.load_state_dict(safetensors.torch.load_file(path)).
/// extra_metadata: more string metadata (e.g. kDataSpecKey, Note [data spec in exports]); a key
/// the export writes itself ("format", "cutrain.modules") is refused.
/// Note [16-bit exports]: dtype BF16 or F16 writes the parameters and BatchNorm's statistics
/// rounded to nearest even - what model.to(torch.bfloat16) holds, half the file - for inference
/// or deployment; load_weights / load_model read them back widened (exactly), torch as 16-bit
/// tensors. Training continues from the F32 checkpoint (save_checkpoint), never from these.
void export_torch(const std::string& path, nn::Sequential& model,
                  const std::map<std::string, std::string>& extra_metadata = {},
                  io::DType dtype = io::DType::kF32);
/// The string metadata of a safetensors file (an export or a checkpoint), checked as loading is.
std::map<std::string, std::string> read_metadata(const std::string& path);

// Note [torch optimizer state]: the optimizer's state in torch.optim's terms, so that a run can
/// move between cutrain and PyTorch with its momentum and second-moment estimates. One F32 tensor
/// per parameter and state, named "<torch parameter name>.<torch state key>" ("0.weight.exp_avg",
/// "2.bias.momentum_buffer": cutrain's state names are torch's keys), and metadata "optimizer"
/// (torch.optim's class name: SGD, Adagrad, RMSprop, Adam, AdamW) and "step" (applied steps;
/// torch keeps it per parameter). tools/cutrain_torch.py loads such a file into a torch.optim
/// optimizer (load_optimizer_state) and writes one from it (save_optimizer_state).
/// Hyperparameters are not in the file: both sides are configured alike by the user.
void export_torch_optimizer(const std::string& path, nn::Sequential& model,
                            optim::Optimizer& optimizer);
/// All or nothing; refuses another optimizer class, a missing tensor, a wrong shape, and tensors
/// of a state this configuration does not keep (amsgrad, momentum, centered differ).
void import_torch_optimizer(const std::string& path, nn::Sequential& model,
                            optim::Optimizer& optimizer);

}  // namespace cutrain::train
