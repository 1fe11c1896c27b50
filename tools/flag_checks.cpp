// cutrain-train's checks of a parsed command line as a whole (tools/train_options.hpp):
// output paths that could not be written at the end, flags the run would ignore.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cutrain/io/file.hpp"
#include "cutrain/train/trainer.hpp"
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
    "--augment-shift", "--augment-flip"};

// What a learning-rate range test (--find-lr) does not do: train to the end, evaluate, write
// (nor the schedule's).
constexpr const char* kTrainingRunOnly[] = {"--epochs",
                                            "--save",
                                            "--checkpoint-every",
                                            "--export-torch",
                                            "--export-torch-optimizer",
                                            "--export-onnx",
                                            "--predictions",
                                            "--metrics",
                                            "--target-accuracy",
                                            "--patience",
                                            "--ema",
                                            "--accumulate",
                                            "--resident-data",
                                            "--cuda-graph",
                                            "--bucket-mb",
                                            "--val-fraction",
                                            "--val-csv",
                                            "--augment-shift",
                                            "--augment-flip"};

}  // namespace

namespace {

// Every file the run reads, by flag: an output that names one of them would replace it.
std::vector<std::pair<std::string, std::string>> input_files(const Config& c) {
  std::vector<std::pair<std::string, std::string>> in;
  auto add = [&](const char* flag, const std::string& path) {
    if (!path.empty()) in.emplace_back(flag, path);
  };
  auto add_pair = [&](const char* flag, const std::string& pair) {  // "X.npy,Y.npy"
    std::size_t begin = 0;
    while (begin <= pair.size()) {
      const std::size_t end = std::min(pair.find(',', begin), pair.size());
      add(flag, pair.substr(begin, end - begin));
      begin = end + 1;
    }
  };
  add("--train-csv", c.train_csv);
  add("--test-csv", c.test_csv);
  add("--val-csv", c.val_csv);
  add("--predict-csv", c.predict_csv);
  add_pair("--train-npy", c.train_npy);
  add_pair("--test-npy", c.test_npy);
  add_pair("--val-npy", c.val_npy);
  add("--predict-npy", c.predict_npy);
  add("--resume", c.resume);
  add("--init-from", c.init_from);
  add("--init-optimizer-from", c.init_optimizer_from);
  add("--model-from", c.model_from);
  if (c.given.count("--data") != 0 || (c.train_csv.empty() && c.train_npy.empty()))
    for (const char* split : {"train", "t10k"})
      for (const char* stem : {"images-idx3-ubyte", "labels-idx1-ubyte"})
        for (const char* ext : {"", ".gz"})
          in.emplace_back("--data", c.data + "/" + split + "-" + stem + ext);
  return in;
}

// Whether two paths name one file: the same path once links and dots are resolved, or (both
// existing) the same inode - a hard link.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  namespace fs = std::filesystem;
  std::error_code ea, eb;
  const fs::path ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  if (!ea && !eb && ca == cb) return true;
  std::error_code ee;
  return fs::exists(a, ee) && fs::exists(b, ee) && fs::equivalent(a, b, ee) && !ee;
}

// Why no file can be created in `dir` (empty when one can): a file is made and removed, since
// permission bits do not tell - root passes access(2) on /proc and on read-only mounts, where
// the write at the end of a run would then fail and lose what it held.
std::string cannot_create_in(const std::filesystem::path& dir) {
  std::string probe = (dir / ".cutrain-write-check-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

// An output's directory exists and takes a new file, or UsageError naming `flag`.
void check_directory(const std::string& flag, const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (!fs::is_directory(dir, ec))
    throw UsageError(flag + ": directory '" + dir.string() + "' does not exist (create it first)");
  if (const std::string why = cannot_create_in(dir); !why.empty())
    throw UsageError(flag + ": cannot create files in '" + dir.string() + "' (" + why + ")");
}

}  // namespace

void check_paths_given(const Config& c) {
  // An empty path (an unset shell variable: --save "$OUT") would silently mean "not given".
  const std::pair<const char*, const std::string*> paths[] = {
      {"--data", &c.data},
      {"--train-csv", &c.train_csv},
      {"--test-csv", &c.test_csv},
      {"--val-csv", &c.val_csv},
      {"--train-npy", &c.train_npy},
      {"--test-npy", &c.test_npy},
      {"--val-npy", &c.val_npy},
      {"--predict-npy", &c.predict_npy},
      {"--predict-csv", &c.predict_csv},
      {"--metrics", &c.metrics},
      {"--save", &c.save},
      {"--resume", &c.resume},
      {"--init-from", &c.init_from},
      {"--report", &c.report},
      {"--export-torch", &c.export_torch},
      {"--export-torch-optimizer", &c.export_torch_optimizer},
      {"--export-onnx", &c.export_onnx},
      {"--init-optimizer-from", &c.init_optimizer_from},
      {"--predictions", &c.predictions},
      {"--model-from", &c.model_from},
      {"--describe", &c.describe}};
  for (const auto& [flag, value] : paths)
    if (c.given.count(flag) != 0 && value->empty())
      throw UsageError(std::string(flag) + " was given an empty path (an unset variable?)");
}

void check_outputs(const Config& c) {
  namespace fs = std::filesystem;
  // --save, the exports, --report and --predictions go through a temporary file renamed over
  // the target (they need only the directory; Note [outputs written whole]); --metrics appends
  // to the file itself, and a device or pipe (/dev/stdout) is written in place.
  struct Output {
    const char* flag;
    const std::string& path;
    bool in_place;
  };
  const Output outputs[] = {{"--save", c.save, false},
                            {"--export-torch", c.export_torch, false},
                            {"--export-torch-optimizer", c.export_torch_optimizer, false},
                            {"--export-onnx", c.export_onnx, false},
                            {"--report", c.report, false},
                            {"--metrics", c.metrics, true},
                            {"--predictions", c.predictions, false}};
  const auto inputs = input_files(c);
  std::vector<std::pair<const char*, fs::path>> seen;
  for (const Output& o : outputs) {
    if (o.path.empty()) continue;
    const std::string flag(o.flag);
    const fs::path path(o.path);
    std::error_code ec;
    if (fs::is_directory(path, ec))
      throw UsageError(flag + ": '" + o.path + "' is a directory; name a file in it");
    // Where the bytes go (Note [writing over links and devices], io::write_file_atomic): this
    // process's stdout / stderr, a link's target, a device or pipe in place, else the directory.
    const fs::path real(io::resolve_links(o.path));
    const bool own = io::own_descriptor(real.string()) >= 0;
    if (!own && fs::exists(real, ec) && !fs::is_regular_file(real, ec)) {
      if (::access(real.c_str(), W_OK) != 0)
        throw UsageError(flag + ": '" + o.path + "' is not writable");
    } else if (!own) {
      check_directory(flag, real);
    }
    if (o.in_place && fs::exists(path, ec) && ::access(path.c_str(), W_OK) != 0)
      throw UsageError(flag + ": '" + o.path + "' exists and is not writable");
    // An output must never replace what the run reads (the training data, the checkpoint it
    // resumes from), directly or through a link. --save over --resume is the one exception:
    // continuing a checkpoint in place is what resuming is for.
    for (const auto& [in_flag, in_path] : inputs)
      if (!(flag == "--save" && in_flag == "--resume") && same_file(path, in_path)) {
        std::string why = flag;
        why.append(" '").append(o.path).append("' is the file ").append(in_flag);
        why.append(" reads ('").append(in_path);
        why.append("'): writing it would destroy the input; give another path");
        throw UsageError(why);
      }
    // The metrics writer picks its format by the name.
    if (flag == "--metrics" && train::metrics_format(o.path) == train::MetricsFormat::kUnknown)
      throw UsageError(flag + ": '" + o.path + "' must end in .csv or .jsonl (its format)");
    if (own) continue;  // a stream: a second output follows the first
    for (const auto& [other, other_path] : seen)
      if (same_file(path, other_path))
        throw UsageError(flag + " and " + other + " both name '" + o.path +
                         "': the later write would replace the earlier; give each its own file");
    seen.emplace_back(o.flag, path);
  }
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
  // --input-shape also says what the augmentation's images are.
  const bool augmenting = c.augment_shift > 0 || c.augment_flip;
  if (c.model != "cnn")
    for (const char* flag : {"--channels", "--residual-blocks", "--input-shape"})
      if (c.given.count(flag) != 0 && !(augmenting && std::string_view(flag) == "--input-shape"))
        throw UsageError(std::string(flag) + " shapes the convolutional model: give --model cnn" +
                         (std::string_view(flag) == "--input-shape"
                              ? " (or --augment-shift / --augment-flip, whose images it shapes)"
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
                                                    "--bucket-mb"};
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
  if (!csv) {
    static constexpr const char* kCsvOnly[] = {"--target", "--regression", "--val-csv",
                                               "--categorical", "--impute"};
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
  if ((c.optimizer == "lbfgs" || c.optimizer == "newton-cg") &&
      (c.precision == "bf16" || c.precision == "fp16"))
    throw UsageError("--precision " + c.precision + ": the full-batch optimizers (--optimizer " +
                     c.optimizer +
                     ") train in fp32 or tf32 (their line searches compare losses to the last "
                     "bit); 16-bit training is for the first-order optimizers");
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
                     "; remove them (or pick the schedule they belong to)");
}

}  // namespace cutrain::tools
