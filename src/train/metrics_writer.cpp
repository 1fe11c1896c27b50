#include "src/train/metrics_writer.hpp"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "cutrain/error.hpp"
#include "src/core/numbers.hpp"

namespace cutrain::train {

MetricsFormat metrics_format(std::string_view path) {
  if (path.ends_with(".csv")) return MetricsFormat::kCsv;
  if (path.ends_with(".jsonl") || path.ends_with(".json")) return MetricsFormat::kJsonLines;
  return MetricsFormat::kUnknown;
}

namespace detail {

MetricsWriter::MetricsWriter(const std::string& path, bool append) {
  if (path.empty()) return;
  const MetricsFormat format = metrics_format(path);
  CUTRAIN_CHECK(format != MetricsFormat::kUnknown, "metrics file '", path,
                "' must end in .csv or .jsonl");
  jsonl_ = format == MetricsFormat::kJsonLines;
  // A resumed run continues the file it wrote; a pipe or device is a fresh stream (its header).
  std::error_code ec;
  const bool fresh = !append || !std::filesystem::is_regular_file(path, ec);
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
