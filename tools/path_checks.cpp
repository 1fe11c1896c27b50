// cutrain-train's checks of the paths a command line names (tools/train_options.hpp): outputs
// that would replace an input or could not be written at the end of the run.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "cutrain/train/trainer.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

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

// Note [save over a run]: --save replaces its file at the first epoch's end, so a command that
// names the checkpoint of another run - a typo, a copied command, a rerun after an interruption
// without --resume - would silently destroy that run's training. A cutrain checkpoint or model
// export already at --save is refused unless it is the --resume file (continuing in place) or
// --overwrite is given; so is a checkpoint at any other output (--export-torch run.safetensors
// for --save's path). A file of anything else is replaced as any output is.
//
// Whether `path` is a pipe: a named one, or one of this process's own descriptors that is one
// (/dev/stdout piped on, bash's >(...)).
bool is_pipe(const std::string& path) {
  struct stat st {};
  const int own = io::own_descriptor(path);
  const int r = own >= 0 ? ::fstat(own, &st) : ::stat(path.c_str(), &st);
  return r == 0 && S_ISFIFO(st.st_mode);
}

// What a cutrain file at `path` holds that a run would lose ("" for anything else). The first
// bytes say whether it can be safetensors at all (a length, then '{'), so a large CSV or report
// there is not read whole.
std::string cutrain_file_at(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  {
    std::ifstream in(path, std::ios::binary);
    char head[9] = {};
    if (!in.read(head, sizeof head) || head[8] != '{') return {};
  }
  std::map<std::string, std::string> meta;
  try {
    meta = train::read_metadata(path);
  } catch (const Error&) {
    return {};  // not a readable cutrain file: nothing of a run to keep
  }
  const auto get = [&](const char* key) {
    const auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  if (get("format") == train::kCheckpointFormat)
    return "the checkpoint of a run trained to epoch " + get("epoch") +
           (get("batch").empty() || get("batch") == "0" ? ""
                                                        : " (and " + get("batch") + " batches)");
  if (!get("cutrain.modules").empty()) return "a model export";
  return {};
}

void check_not_over_a_run(const Config& c, const std::string& flag, const std::string& path) {
  if (path.empty() || c.overwrite) return;
  if (flag == "--save" && !c.resume.empty() && same_file(path, c.resume)) return;
  const std::string what = cutrain_file_at(path);
  if (what.empty() || (flag != "--save" && what == "a model export")) return;
  std::string how = ", give " + flag + " another path, or add --overwrite to replace it";
  if (what != "a model export") how = ": continue it with --resume " + path + how;
  throw UsageError(flag + " '" + path + "' holds " + what + " (cutrain-train --describe " + path +
                   " shows its command)" + how);
}

}  // namespace

bool resolve_resume_auto(Config& c) {
  if (c.resume != "auto") return false;
  if (c.save.empty())
    throw UsageError(
        "--resume auto continues the --save file when it exists: give --save (or name the "
        "checkpoint to resume, ./auto for a file called auto)");
  std::error_code ec;
  if (std::filesystem::is_regular_file(c.save, ec)) {
    c.resume = c.save;
    return false;
  }
  c.resume.clear();  // nothing to continue yet: a fresh run, as if --resume were not given
  c.given.erase("--resume");
  return true;
}

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

void check_inputs_exist(const Config& c) {
  // A file to read that is not there is the flag's error, said before anything is read: the
  // reader's own "cannot open" names the file but not which flag gave it (--resume, --init-from
  // and --model-from all take a .safetensors). The --data files have their own message.
  std::vector<std::pair<std::string, std::string>> inputs = input_files(c);
  if (!c.describe.empty()) inputs.emplace_back("--describe", c.describe);
  for (const auto& [flag, path] : inputs) {
    std::error_code error;
    if (flag != "--data" && !std::filesystem::exists(path, error) && !error) {
      std::string message = flag;
      message.append(" '").append(path).append("': no such file");
      throw UsageError(message);
    }
  }
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
  if (c.overwrite && std::all_of(std::begin(outputs), std::end(outputs),
                                 [](const Output& o) { return o.path.empty(); }))
    throw UsageError(
        "--overwrite lets an output (--save, an export) replace a checkpoint: give one too");
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
    if (flag == "--save" && is_pipe(real.string()))
      throw UsageError(flag + ": '" + o.path +
                       "' is a pipe: a checkpoint is rewritten at every epoch and read back by "
                       "--resume, which a pipe cannot give; name a file (--export-torch writes "
                       "the final model once, to a pipe too)");
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
    check_not_over_a_run(c, flag, o.path);
  }
}

}  // namespace cutrain::tools
