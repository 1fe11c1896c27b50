#pragma once
// cutrain-train's configuration: the flags (add_options, CLI11; tools/train_options.cpp), their
// checks as a whole (tools/flag_checks.cpp, the paths in tools/path_checks.cpp) and what they
// build - the model (tools/make_model.cpp), the optimizer, the LR schedule and the trainer's
// options (tools/make_trainer.cpp). tools/cutrain_train.cpp runs it.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cutrain/cutrain.hpp"

namespace cutrain::tools {

struct Config {
  std::string data = data::kFashionMnistDir;
  // CSV data instead of --data's IDX files: the target column by header name or index
  // (negative: from the end); class labels, or with regression a float target.
  std::string train_csv, test_csv, val_csv, target = "-1";
  // NumPy arrays instead: "X.npy,Y.npy" pairs (data::load_npy), and features to predict.
  std::string train_npy, test_npy, val_npy, predict_npy;
  std::string categorical;   // CSV columns to one-hot encode, by header name, comma-separated
  std::string drop_columns;  // CSV columns to leave out, by header name, comma-separated
  std::string id_column;     // a CSV column of row ids, left out and written with --predictions
  std::string impute;        // "mean" or "median": fill missing CSV features; empty: refuse them
  // Every CSV file's cell and decimal separators (Note [CSV separators]): ",", ";", "tab" or "|";
  // "." or ","; and whether its first row is a header: "auto" (detected), "yes" or "no".
  std::string csv_separator = ",", csv_decimal = ".", csv_header = "auto";
  bool regression = false;
  std::string model = "mlp";         // mlp, or cnn (Note [the default CNN], tools/make_model.cpp)
  std::string hidden = "512,256";    // mlp: its hidden sizes; cnn: the classifier's (default 128)
  std::string channels = "32,64";    // cnn: each block's channels (two 3x3 convolutions, a pool)
  std::int32_t residual_blocks = 0;  // cnn: Residual blocks after each block's pool
  std::string input_shape;           // cnn: C,H,W of a row (default 1,28,28 for 784 features)
  std::string activation = "relu";
  bool batchnorm = false;
  float dropout = 0.2F;
  std::string init;  // empty: He for ReLU-family, Xavier for tanh/sigmoid
  std::string optimizer = "adamw";
  float lr = 1e-3F, momentum = 0.0F, dampening = 0.0F, alpha = 0.99F, beta1 = 0.9F, beta2 = 0.999F,
        eps = 1e-8F, weight_decay = 1e-4F;
  bool nesterov = false, centered = false, amsgrad = false;
  std::string schedule = "cosine";
  double step_size = 10, gamma = 0.1, min_lr = 0, pct_start = 0.3;
  std::int64_t warmup = 0;
  std::int64_t plateau_patience = 10;  // plateau: epochs without improvement before a cut
  float clip_norm = 0;
  float label_smoothing = 0;
  std::string class_weights;       // "balanced" or one weight per class, comma-separated
  float ema = 0;                   // weight averaging decay (Note [weight averaging]); 0: off
  std::int32_t augment_shift = 0;  // Note [augmentation on the device]: pixels; 0: off
  bool augment_flip = false;       // and a random horizontal flip
  bool eval_flip = false;          // Note [test-time flips]: evaluation averages over mirror images
  double target_accuracy = 0;      // > 0: evaluate the test set each epoch, report time to reach it
  double bucket_mb = 0;            // data parallelism: gradient bucket size (0: one all-reduce)
  bool sync_batchnorm = false;     // data parallelism: BatchNorm over the global batch
  std::int64_t batch_size = 128, epochs = 30, patience = 0, train_subset = 0;
  std::int64_t folds = 0;       // > 1: k-fold cross-validation instead of a training run
  std::int64_t accumulate = 1;  // batches per optimizer step (Note [gradient accumulation])
  double val_fraction = 0;
  std::uint64_t seed = 0;
  bool no_shuffle = false, standardize = false;
  bool drop_last = false;           // drop each epoch's last partial batch (DataLoader's drop_last)
  std::int64_t max_classes = 1000;  // a label beyond this is taken for a mistake, not a class
  std::string monitor = "val_loss";  // what --patience watches: val_loss or val_accuracy
  bool stratify = false;       // --val-fraction keeps each class's share (data::stratified_split)
  bool resident_data = false;  // the training set on the device (Note [resident datasets])
  std::string cuda_graph = "auto";    // Note [the step as one CUDA graph]: auto | on | off
  std::int64_t checkpoint_every = 0;  // --save also every this many steps (mid-epoch)
  bool overwrite = false;             // --save may replace another run's checkpoint
  std::string precision = "fp32";     // Note [TF32 switch]
  std::string loss_scale = "off";     // Note [dynamic loss scale]: off | dynamic
  std::string rounding = "nearest";   // Note [16-bit compute copy]: nearest | stochastic
  std::string device = "auto", metrics, save, resume, init_from, report, export_torch;
  std::string predictions;  // the test set's predictions as CSV
  std::string predict_csv;  // ... or those of this file's rows (features only)
  // The learning-rate range test instead of training (include/cutrain/train/lr_finder.hpp).
  bool find_lr = false;
  std::int64_t find_lr_steps = 100;
  double find_lr_min = 1e-7, find_lr_max = 10;
  std::string model_from;  // the model's modules and weights from a file, instead of the flags
  std::string describe;    // print what a model file holds and exit
  // Note [torch optimizer state]: torch.optim state in and out (tools/cutrain_torch.py)
  std::string init_optimizer_from, export_torch_optimizer;
  std::string export_dtype = "fp32";  // --export-torch's (Note [16-bit exports])
  // ONNX export (include/cutrain/train/onnx.hpp): the file, probabilities instead of logits, and
  // whether the data preparation stays out of the graph.
  std::string export_onnx;
  bool onnx_softmax = false, onnx_no_prep = false;
  std::set<std::string> given;  // the flags set on the command line ("--clip-norm", ...)
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Whether the library's error `e` says `text`: how the tool tells which of cutrain::Error's
// refusals are a flag's (a missing CSV column, a checkpoint of another run) and rethrows them as
// UsageError naming the flag.
inline bool says(const std::exception& e, std::string_view text) {
  return std::string_view(e.what()).find(text) != std::string_view::npos;
}

// Declares every flag of cutrain-train on `app`, bound to `c`.
void add_options(CLI::App& app, Config& c);

// Refuses, before any data is read or step taken, a run whose output files (--save, --report,
// --metrics, --export-torch, --export-torch-optimizer) could not be written at the end - a
// missing or read-only directory, a directory given as the file, or two outputs naming one file
// (the later write would replace the earlier) - so that hours of training never end in "cannot
// create". A UsageError naming the flag.
// An output that names a file the run reads (the data, the checkpoint or model it starts from,
// also through a link) is refused as well: it would destroy its input.
void check_outputs(const Config& c);
// A path flag given an empty value ("--save $UNSET") is a UsageError, not "no file".
void check_paths_given(const Config& c);
// A file to read (data, --resume, --init-from, --model-from, --describe, ...) that does not exist
// is a UsageError naming its flag.
void check_inputs_exist(const Config& c);
// Note [resume auto]: `--resume auto` with `--save X` is `--resume X` when X exists, else a
// fresh start that saves to X - the one command a requeued or restarted job can repeat (a
// scheduler reruns it unchanged). Rewrites c.resume; true when there was nothing to resume.
bool resolve_resume_auto(Config& c);

// A flag the run would silently ignore is a UsageError naming every such flag: a
// hyperparameter of another optimizer (--momentum with adam) or schedule (--gamma with cosine),
// and, with the full-batch optimizers (lbfgs, newton-cg: one step over the whole training set,
// no resumable state), every flag of the mini-batch trainer (--resume would pretend to continue).
void check_flags_apply(const Config& c);
// Why a full-batch optimizer (lbfgs, newton-cg) refuses a model with BatchNorm: `which` names
// the layers ("--model cnn has BatchNorm2d layers").
std::string full_batch_batchnorm(const std::string& optimizer, const std::string& which);

// "512,256" -> {512, 256}; anything else is a UsageError naming --hidden.
std::vector<std::int64_t> parse_hidden(const std::string& text);
// The same for any flag of positive sizes ("--channels", "--input-shape").
std::vector<std::int64_t> parse_sizes(const char* flag, const std::string& text);
// --export-dtype as the safetensors element type (Note [16-bit exports]).
io::DType export_dtype(const Config& c);
// A sample's features as an image C,H,W: --input-shape, else 1,28,28; exit 2 unless its size is
// `features`.
std::vector<std::int64_t> image_shape(const Config& c, std::int64_t features);
// --eval-flip's test-time flips (Note [test-time flips]) for rows of `features` values: images of
// image_shape(); off without the flag.
data::EvalAugment eval_augment(const Config& c, std::int64_t features);
std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, const Arena& params);
// The model, built on `device`: with --model mlp, Linear -> [BatchNorm1d] -> activation ->
// [Dropout] per hidden size, then Linear(.., outputs); with --model cnn, the convolutional blocks
// of --channels before that classifier (Note [the default CNN]); or, with --model-from, the file's
// own modules and weights (train::load_model), which must fit the data (a UsageError says how
// they do not).
nn::Sequential make_model(const Config& c, const std::vector<std::int64_t>& hidden,
                          std::int64_t features, std::int64_t outputs, Device device);
// Per-iteration schedule over epochs * per_epoch steps (with --warmup when set).
std::shared_ptr<optim::LrSchedule> make_schedule(const Config& c, std::int64_t per_epoch);

struct TrainData;
// The mini-batch trainer's options from the flags, for training on d.train (the schedule's
// length from its size over the ranks of `comm`, which may be null). A UsageError for a
// --warmup as long as the run.
train::TrainerOptions trainer_options(const Config& c, const TrainData& d, dist::Communicator* comm,
                                      const std::string& command_line);

}  // namespace cutrain::tools
