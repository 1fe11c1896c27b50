// cutrain-train's checks of a parsed command line as a whole (tools/train_options.hpp): flags
// the run would ignore or that contradict each other (the paths: tools/path_checks.cpp).
#include <algorithm>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "tools/train_options.hpp"

namespace cutrain::tools {
namespace {

// The LR schedule's flags: neither the full-batch optimizers nor a range test (--find-lr,
// which sets the lr itself) use them.
constexpr const char* kScheduleFlags[] = {"--schedule", "--step-size", "--gamma",
                                          "--min-lr",   "--pct-start", "--plateau-patience",
                                          "--warmup"};

// The flags of the mini-batch trainer, which the full-batch optimizers do not use (nor the
// schedule's).
constexpr const char* kMiniBatchOnly[] = {
    "--val-csv",       "--batchnorm",       "--momentum",
    "--nesterov",      "--dampening",       "--alpha",
    "--centered",      "--beta1",           "--beta2",
    "--eps",           "--weight-decay",    "--amsgrad",
    "--clip-norm",     "--label-smoothing", "--ema",
    "--accumulate",    "--patience",        "--monitor",
    "--val-fraction",  "--no-shuffle",      "--drop-last",
    "--metrics",       "--resume",          "--checkpoint-every",
    "--resident-data", "--bucket-mb",       "--target-accuracy",
    "--find-lr",       "--loss-scale",      "--cuda-graph",
    "--rounding",      "--augment-shift",   "--augment-flip",
    "--eval-flip",     "--sync-batchnorm"};

// What a learning-rate range test (--find-lr) does not do: train to the end, evaluate, write,
// continue a checkpoint (--init-from gives it weights), order its batches otherwise (they are
// shuffled, the short last one left out: include/cutrain/train/lr_finder.hpp) - nor the
// schedule's.
constexpr const char* kTrainingRunOnly[] = {"--epochs",        "--resume",
                                            "--no-shuffle",    "--drop-last",
                                            "--save",          "--checkpoint-every",
                                            "--export-torch",  "--export-torch-optimizer",
                                            "--export-onnx",   "--predictions",
                                            "--metrics",       "--target-accuracy",
                                            "--patience",      "--ema",
                                            "--accumulate",    "--resident-data",
                                            "--cuda-graph",    "--bucket-mb",
                                            "--val-fraction",  "--val-csv",
                                            "--augment-shift", "--augment-flip",
                                            "--eval-flip",     "--sync-batchnorm"};

}  // namespace

std::string full_batch_batchnorm(const std::string& optimizer, const std::string& which) {
  return "--optimizer " + optimizer + " steps on the whole training set with the model in " +
         "eval mode (no dropout noise inside its line search), where BatchNorm normalizes with " +
         "running statistics no step has learned: " + which +
         "; train it with a first-order optimizer (adamw, sgd, ...), then fine-tune its "
         "--export-torch file with --model-from (its statistics kept, frozen)";
}

void check_flags_apply(const Config& c) {
  // The given flags of `flags` that are not in `used`, comma-separated.
  auto unused = [&](std::span<const char* const> flags,
                    std::initializer_list<std::string_view> used) {
    std::string out;
    for (const char* flag : flags)
      if (c.given.count(flag) != 0 && std::find(used.begin(), used.end(), flag) == used.end())
        out += (out.empty() ? "" : ", ") + std::string(flag);
    return out;
  };
  auto join = [](const std::string& a, const std::string& b) {
    return a.empty() || b.empty() ? a + b : a + ", " + b;
  };
  if (c.export_torch.empty() && c.given.count("--export-dtype") != 0)
    throw UsageError("--export-dtype shapes the --export-torch file: give --export-torch");
  if (c.export_onnx.empty())
    for (const char* flag : {"--onnx-softmax", "--onnx-no-prep"})
      if (c.given.count(flag) != 0)
        throw UsageError(std::string(flag) + " shapes the --export-onnx file: give --export-onnx");
  // --input-shape also says what the augmentation's images are, and the test-time flips'.
  const bool augmenting = c.augment_shift > 0 || c.augment_flip || c.eval_flip;
  if (c.model != "cnn")
    for (const char* flag : {"--channels", "--residual-blocks", "--input-shape"})
      if (c.given.count(flag) != 0 && !(augmenting && std::string_view(flag) == "--input-shape"))
        throw UsageError(std::string(flag) + " shapes the convolutional model: give --model cnn" +
                         (std::string_view(flag) == "--input-shape"
                              ? " (or --augment-shift / --augment-flip / --eval-flip, whose "
                                "images it shapes)"
                              : ""));
  if (!c.model_from.empty())
    for (const char* flag :
         {"--model", "--hidden", "--channels", "--residual-blocks", "--input-shape", "--batchnorm"})
      if (c.given.count(flag) != 0 && !(augmenting && std::string_view(flag) == "--input-shape"))
        throw UsageError(std::string(flag) + " describes a model, but --model-from '" +
                         c.model_from + "' brings its own: give one");
  const bool csv = c.given.count("--train-csv") != 0 || c.given.count("--test-csv") != 0;
  if (csv && (c.train_csv.empty() || (c.test_csv.empty() && c.folds == 0)))
    throw UsageError(
        "--train-csv and --test-csv go together: give both (--folds needs --train-csv alone)");
  if (csv && c.given.count("--data") != 0)
    throw UsageError("--data (IDX files) and --train-csv / --test-csv both name data: use one");
  const bool npy = c.given.count("--train-npy") != 0 || c.given.count("--test-npy") != 0 ||
                   c.given.count("--val-npy") != 0;
  if (npy && (csv || c.given.count("--data") != 0))
    throw UsageError("--train-npy / --test-npy and " +
                     std::string(csv ? "--train-csv / --test-csv" : "--data (IDX files)") +
                     " both name data: use one");
  if (npy && (c.train_npy.empty() || (c.test_npy.empty() && c.folds == 0)))
    throw UsageError(
        "--train-npy and --test-npy go together: give both (--folds needs --train-npy alone)");
  if (c.given.count("--val-npy") != 0 && c.given.count("--val-fraction") != 0)
    throw UsageError("--val-npy and --val-fraction both give validation data: use one");
  if (!c.predict_npy.empty() && !c.predict_csv.empty())
    throw UsageError("--predict-npy and --predict-csv both name rows to predict: use one");
  if (!c.predict_npy.empty() && c.predictions.empty())
    throw UsageError("--predict-npy: name the file for its predictions with --predictions");
  if (!c.model_from.empty()) {
    static constexpr const char* kArchitecture[] = {"--hidden",  "--activation", "--batchnorm",
                                                    "--dropout", "--init",       "--init-from"};
    const std::string u = unused(kArchitecture, {});
    if (!u.empty())
      throw UsageError("--model-from gives the model's layers and weights: remove " + u);
  }
  if (!c.predict_csv.empty() && c.predictions.empty())
    throw UsageError("--predict-csv: name the file for its predictions with --predictions");
  if (!c.find_lr) {
    static constexpr const char* kFinderOnly[] = {"--find-lr-steps", "--find-lr-min",
                                                  "--find-lr-max"};
    const std::string u = unused(kFinderOnly, {});
    if (!u.empty()) throw UsageError(u + ": only with --find-lr");
  } else {
    const std::string u = join(unused(kTrainingRunOnly, {}), unused(kScheduleFlags, {}));
    if (!u.empty())
      throw UsageError("--find-lr measures the loss against the lr and trains nothing: remove " +
                       u);
    if (!(c.find_lr_min < c.find_lr_max))
      throw UsageError("--find-lr-min must be below --find-lr-max");
  }
  if (c.given.count("--monitor") != 0 && c.patience == 0)
    throw UsageError("--monitor chooses what --patience watches: add --patience");
  if (c.monitor == "val_accuracy" && c.regression)
    throw UsageError("--monitor val_accuracy: --regression has no accuracy; monitor val_loss");
  if (c.given.count("--stratify") != 0 && c.given.count("--val-fraction") == 0 && c.folds == 0)
    throw UsageError(
        "--stratify splits the validation data --val-fraction (or --folds) holds out: add one");
  if (c.folds > 0) {
    // Note [cross-validation]: no run to resume or checkpoint, no kept model to export or
    // predict with, the validation data are the folds, and nothing looks at the test set.
    static constexpr const char* kNotWithFolds[] = {"--val-fraction",
                                                    "--val-csv",
                                                    "--patience",
                                                    "--monitor",
                                                    "--save",
                                                    "--resume",
                                                    "--checkpoint-every",
                                                    "--metrics",
                                                    "--predict-npy",
                                                    "--val-npy",
                                                    "--predict-csv",
                                                    "--export-torch",
                                                    "--export-torch-optimizer",
                                                    "--export-onnx",
                                                    "--target-accuracy",
                                                    "--find-lr",
                                                    "--model-from",
                                                    "--init-from",
                                                    "--init-optimizer-from",
                                                    "--bucket-mb",
                                                    "--sync-batchnorm"};
    const std::string u = unused(kNotWithFolds, {});
    if (!u.empty())
      throw UsageError(
          "--folds trains one model per fold, scores it on the held-out fold and "
          "keeps none: remove " +
          u);
    if (c.optimizer == "lbfgs" || c.optimizer == "newton-cg")
      throw UsageError("--folds: with a first-order optimizer (--optimizer " + c.optimizer +
                       " takes full-batch steps)");
  }
  if (c.given.count("--val-csv") != 0 && c.given.count("--val-fraction") != 0)
    throw UsageError("--val-csv and --val-fraction both give validation data: use one");
  if (c.csv_decimal == "," && c.csv_separator == ",")
    throw UsageError(
        "--csv-decimal ',': the cells need another separator (--csv-separator ';' "
        "is what Excel writes with decimal commas)");
  if (!csv && c.predict_csv.empty())
    for (const char* flag : {"--csv-separator", "--csv-decimal", "--csv-header"})
      if (c.given.count(flag) != 0)
        throw UsageError(std::string(flag) +
                         ": only for CSV data (--train-csv / --test-csv, --predict-csv)");
  if (!csv && c.predict_csv.empty() && c.given.count("--id-column") != 0)
    throw UsageError("--id-column: only for CSV data (--train-csv / --test-csv, --predict-csv)");
  if (!csv) {
    static constexpr const char* kCsvOnly[] = {"--target",      "--regression", "--val-csv",
                                               "--categorical", "--impute",     "--drop-columns"};
    // --regression: for NumPy targets too.
    const std::string u = npy ? unused(kCsvOnly, {"--regression"}) : unused(kCsvOnly, {});
    if (!u.empty()) throw UsageError(u + ": only for CSV data (--train-csv / --test-csv)");
  }
  if (c.regression) {
    static constexpr const char* kClassesOnly[] = {"--target-accuracy", "--label-smoothing",
                                                   "--class-weights", "--stratify"};
    const std::string u = unused(kClassesOnly, {});
    if (!u.empty()) throw UsageError("--regression has no classes and no accuracy: remove " + u);
  }
  if (c.rounding != "nearest" && c.precision != "bf16" && c.precision != "fp16")
    throw UsageError("--rounding " + c.rounding +
                     ": the rounding of 16-bit parameters; this run computes in " + c.precision +
                     " (give --precision bf16 or fp16)");
  if ((c.optimizer == "lbfgs" || c.optimizer == "newton-cg") &&
      (c.precision == "bf16" || c.precision == "fp16"))
    throw UsageError("--precision " + c.precision + ": the full-batch optimizers (--optimizer " +
                     c.optimizer +
                     ") train in fp32 or tf32 (their line searches compare losses to the last "
                     "bit); 16-bit training is for the first-order optimizers");
  if ((c.optimizer == "lbfgs" || c.optimizer == "newton-cg") && c.model == "cnn")
    throw UsageError(full_batch_batchnorm(c.optimizer, "--model cnn has BatchNorm2d layers"));
  if (c.optimizer == "lbfgs" || c.optimizer == "newton-cg") {
    const std::string u = join(unused(kMiniBatchOnly, {}), unused(kScheduleFlags, {}));
    if (u.empty()) return;
    std::string why = "--optimizer " + c.optimizer +
                      " takes full-batch steps (the whole training set each, no dropout) and "
                      "does not use " +
                      u + "; remove them or pick a first-order optimizer";
    if (c.given.count("--resume") != 0)
      why += " (it keeps no resumable state: --init-from starts from a checkpoint's weights)";
    throw UsageError(why);
  }
  static constexpr const char* optimizer_flags[] = {"--momentum", "--nesterov", "--dampening",
                                                    "--alpha",    "--centered", "--beta1",
                                                    "--beta2",    "--eps",      "--amsgrad"};
  std::string u;
  if (c.optimizer == "sgd")
    u = unused(optimizer_flags, {"--momentum", "--nesterov", "--dampening"});
  else if (c.optimizer == "adagrad")
    u = unused(optimizer_flags, {"--eps"});
  else if (c.optimizer == "rmsprop")
    u = unused(optimizer_flags, {"--momentum", "--nesterov", "--alpha", "--centered", "--eps"});
  else
    u = unused(optimizer_flags, {"--beta1", "--beta2", "--eps", "--amsgrad"});
  if (!u.empty())
    throw UsageError("--optimizer " + c.optimizer + " does not use " + u +
                     "; remove them (or pick the optimizer they belong to)");
  static constexpr const char* schedule_flags[] = {"--step-size", "--gamma", "--min-lr",
                                                   "--pct-start", "--plateau-patience"};
  if (c.schedule == "step")
    u = unused(schedule_flags, {"--step-size", "--gamma"});
  else if (c.schedule == "exponential")
    u = unused(schedule_flags, {"--gamma"});
  else if (c.schedule == "constant")
    u = unused(schedule_flags, {});
  else if (c.schedule == "onecycle")
    u = unused(schedule_flags, {"--pct-start"});
  else if (c.schedule == "plateau")
    u = unused(schedule_flags, {"--gamma", "--min-lr", "--plateau-patience"});
  else
    u = unused(schedule_flags, {"--min-lr"});
  if (!u.empty())
    throw UsageError("--schedule " + c.schedule + " does not use " + u +
                     "; remove them (or pick the schedule they belong to)" +
                     (c.given.count("--schedule") != 0 ? ""
                      : c.model == "cnn" ? " - onecycle is --model cnn's default schedule"
                                         : " - cosine is the default schedule"));
}

}  // namespace cutrain::tools
