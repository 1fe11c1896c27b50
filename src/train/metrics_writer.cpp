#include "src/train/metrics_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>
#include <vector>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"
#include "src/core/numbers.hpp"

namespace cutrain::train {

MetricsFormat metrics_format(std::string_view path) {
  if (path.ends_with(".csv")) return MetricsFormat::kCsv;
  if (path.ends_with(".jsonl") || path.ends_with(".json")) return MetricsFormat::kJsonLines;
  return MetricsFormat::kUnknown;
}

namespace detail {
namespace {

// Note [metrics of a resumed run]: a resumed run continues its metrics file after the epochs its
// checkpoint holds. Lines past them are another continuation's - a run killed after its metrics
// line and before its checkpoint, or a run branched from an older checkpoint - and a line without
// its newline is one a killed run left unfinished: appended after, the file held two rows for one
// epoch, or one row of both. They are dropped (TensorBoard's purge_step does the same), the rest
// rewritten whole before the run appends.
std::string lines_to_keep(std::string_view text, bool jsonl, std::int64_t epochs) {
  std::string kept;
  for (std::size_t start = 0, line_no = 0; start < text.size(); ++line_no) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) break;  // unfinished
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    std::int64_t epoch = 0;
    if (jsonl) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("epoch") && j["epoch"].is_number_integer())
        epoch = j["epoch"].get<std::int64_t>();
    } else if (line_no == 0) {
      epoch = 1;  // the header
    } else {
      std::from_chars(line.data(), line.data() + line.size(), epoch);
    }
    if (epoch >= 1 && epoch <= epochs) kept.append(line).push_back('\n');
  }
  return kept;
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, std::int64_t resumed_epochs) {
  if (path.empty()) return;
  const MetricsFormat format = metrics_format(path);
  CUTRAIN_CHECK(format != MetricsFormat::kUnknown, "metrics file '", path,
                "' must end in .csv or .jsonl");
  jsonl_ = format == MetricsFormat::kJsonLines;
  // A resumed run continues the file it wrote; a pipe or device is a fresh stream (its header).
  std::error_code ec;
  bool fresh = resumed_epochs == 0 || !std::filesystem::is_regular_file(path, ec);
  if (!fresh) {
    const std::vector<std::uint8_t> bytes =
        data::read_file(path, std::size_t{1} << 32, {}, data::Gzip::kRefuse);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const std::string kept = lines_to_keep(text, jsonl_, resumed_epochs);
    if (kept.size() != text.size())  // Note [metrics of a resumed run]
      io::write_file_atomic(path,
                            {reinterpret_cast<const std::uint8_t*>(kept.data()), kept.size()});
    fresh = kept.empty();  // nothing kept (an emptied file): it starts again, with its header
  }
  out_ = io::StreamFile(path, !fresh, "the metrics file");
  if (!jsonl_ && fresh)
    out_.write(
        "epoch,lr,train_loss,val_loss,val_accuracy,grad_norm,skipped_steps,seconds,"
        "samples_per_s,loss_scale\n");
}

void MetricsWriter::write(const EpochMetrics& m) {
  if (!out_.is_open()) return;
  // A full disk (or /dev/full) shows here: a line that did not reach the file is an error, not
  // metrics silently lost.
  if (jsonl_) {
    nlohmann::json j = {{"epoch", m.epoch},
                        {"lr", m.lr},
                        {"train_loss", m.train_loss},
                        {"grad_norm", m.grad_norm},
                        {"skipped_steps", m.skipped_steps},
                        {"seconds", m.seconds},
                        {"samples_per_s", m.samples_per_second},
                        {"loss_scale", m.loss_scale}};
    j["val_loss"] = std::isnan(m.val_loss) ? nlohmann::json(nullptr) : nlohmann::json(m.val_loss);
    j["val_accuracy"] =
        std::isnan(m.val_accuracy) ? nlohmann::json(nullptr) : nlohmann::json(m.val_accuracy);
    out_.write(j.dump() + "\n");
  } else {
    // Note [numbers in files]: "0.5" in every locale (printf wrote "0,5" in a German one).
    using cutrain::detail::format_g;
    const std::string line = std::to_string(m.epoch) + ',' + format_g(m.lr, 9) + ',' +
                             format_g(m.train_loss, 9) + ',' + format_g(m.val_loss, 9) + ',' +
                             format_g(m.val_accuracy, 9) + ',' + format_g(m.grad_norm, 9) + ',' +
                             std::to_string(m.skipped_steps) + ',' + format_g(m.seconds, 6) + ',' +
                             format_g(m.samples_per_second, 6) + ',' + format_g(m.loss_scale, 9) +
                             '\n';
    out_.write(line);
  }
}

}  // namespace detail
}  // namespace cutrain::train
