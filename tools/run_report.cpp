// tools/run_report.hpp.
#include "tools/run_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"

namespace cutrain::tools {

void print_test_result(const train::EvalResult& r, bool regression) {
  if (regression)
    std::printf("test MSE %.6g", r.loss);
  else
    std::printf("test accuracy %.4f  test loss %.4f", r.accuracy, r.loss);
}

namespace {
std::string class_name(const std::vector<std::string>& names, std::size_t c) {
  return c < names.size() ? names[c] : std::to_string(c);
}
// A name as a CSV cell (Note [CSV quoting]): quoted, its quotes doubled, when it holds a comma, a
// quote or a line break, or begins or ends with a blank - what the reader reads back as written.
std::string csv_cell(const std::string& name) {
  const bool plain = name.find_first_of(",\"\r\n") == std::string::npos &&
                     (name.empty() || (name.front() != ' ' && name.front() != '\t' &&
                                       name.back() != ' ' && name.back() != '\t'));
  if (plain) return name;
  std::string out = "\"";
  for (const char ch : name) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}
}  // namespace

ClassResults class_results(const std::vector<float>& logits, std::int64_t classes,
                           const std::vector<std::int32_t>& labels) {
  const auto c = static_cast<std::int32_t>(classes);
  return {train::confusion_matrix(logits, c, labels),
          c >= 2 ? train::roc_auc(logits, c, labels) : train::RocAuc{{}, std::nan("")}};
}

std::optional<ClassResults> class_results_if_small(const std::vector<float>& logits,
                                                   std::int64_t classes,
                                                   const std::vector<std::int32_t>& labels) {
  if (classes <= kMaxClassesReported) return class_results(logits, classes, labels);
  std::printf("(no per-class table or confusion matrix for %lld classes; at most %lld)\n",
              static_cast<long long>(classes), static_cast<long long>(kMaxClassesReported));
  return std::nullopt;
}

void print_per_class(const ClassResults& r, const std::vector<std::string>& names) {
  const train::ConfusionMatrix& m = r.matrix;
  const std::vector<double> recall = m.recall(), precision = m.precision(), f1 = m.f1();
  std::printf("%-14s %6s %7s %9s %6s %7s\n", "test class", "rows", "recall", "precision", "F1",
              "ROC AUC");
  for (std::int32_t c = 0; c < m.classes; ++c) {
    const auto k = static_cast<std::size_t>(c);
    const double auc = k < r.auc.per_class.size() ? r.auc.per_class[k] : std::nan("");
    std::printf("%-14s %6lld %7.4f %9.4f %6.4f %7.4f\n", class_name(names, k).c_str(),
                static_cast<long long>(m.rows_of(c)), recall[k], precision[k], f1[k], auc);
  }
  std::printf("macro F1 %.4f  macro ROC AUC %.4f\n", m.macro_f1(), r.auc.macro);
}

void add_per_class(nlohmann::json& report, const ClassResults& r,
                   const std::vector<std::string>& names) {
  const train::ConfusionMatrix& m = r.matrix;
  const std::vector<double> recall = m.recall(), precision = m.precision(), f1 = m.f1();
  nlohmann::json rows = nlohmann::json::array(), matrix = nlohmann::json::array();
  for (std::int32_t c = 0; c < m.classes; ++c) {
    const auto k = static_cast<std::size_t>(c);
    rows.push_back(
        {{"class", c},
         {"name", class_name(names, k)},
         {"rows", m.rows_of(c)},
         {"recall", recall[k]},
         {"precision", precision[k]},
         {"f1", f1[k]},
         {"roc_auc", json_number(k < r.auc.per_class.size() ? r.auc.per_class[k] : std::nan(""))}});
    nlohmann::json row = nlohmann::json::array();
    for (std::int32_t p = 0; p < m.classes; ++p) row.push_back(m.at(c, p));
    matrix.push_back(row);
  }
  report["test_per_class"] = rows;
  report["test_macro_f1"] = m.macro_f1();
  report["test_roc_auc"] = json_number(r.auc.macro);
  report["test_confusion_matrix"] = matrix;
}

namespace {
std::string target_name(const std::vector<std::string>& names, std::size_t j) {
  return j < names.size() ? names[j] : "target " + std::to_string(j);
}
}  // namespace

void print_per_target(const std::vector<train::TargetMetrics>& m,
                      const std::vector<std::string>& names) {
  std::printf("%-14s %12s %12s %8s\n", "test target", "MSE", "MAE", "R^2");
  for (std::size_t j = 0; j < m.size(); ++j)
    std::printf("%-14s %12.6g %12.6g %8.4f\n", target_name(names, j).c_str(), m[j].mse, m[j].mae,
                m[j].r2);
}

void add_per_target(nlohmann::json& report, const std::vector<train::TargetMetrics>& m,
                    const std::vector<std::string>& names) {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t j = 0; j < m.size(); ++j)
    rows.push_back({{"target", j},
                    {"name", target_name(names, j)},
                    {"mse", m[j].mse},
                    {"mae", m[j].mae},
                    {"r2", m[j].r2}});
  report["test_per_target"] = rows;
}

nlohmann::json json_number(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

void check_test_loss(const train::EvalResult& r) {
  CUTRAIN_CHECK(std::isfinite(r.loss), "training diverged: the trained model's test loss is ",
                r.loss,
                " (its outputs overflow); nothing was predicted or exported - lower the learning "
                "rate, clip gradients (--clip-norm), or check the data");
}

void EndOfRunOutputs::failed(const char* flag, std::string why) {
  if (why.starts_with("cutrain: ")) why.erase(0, 9);
  if (!why.starts_with(std::string(flag) + ": ")) why = std::string(flag) + ": " + why;
  std::fprintf(stderr, "cutrain-train: error: %s\n", why.c_str());
  failed_.emplace_back(flag);
}

void EndOfRunOutputs::check() const {
  if (failed_.empty()) return;
  std::string which;
  for (const std::string& flag : failed_) which += (which.empty() ? "" : ", ") + flag;
  throw std::runtime_error(
      std::to_string(failed_.size()) + (failed_.size() == 1 ? " output" : " outputs") +
      " could not be written (" + which + ": the errors above); the others were");
}

void write_whole(const std::string& flag, const std::string& path, const std::string& text) {
  try {
    io::write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  } catch (const Error& e) {
    // Checked up front (check_outputs): failing here is the disk, not the arguments.
    std::string why = e.what();
    if (why.starts_with("cutrain: ")) why.erase(0, 9);
    throw std::runtime_error(flag + ": " + why);
  }
}

void write_report(const std::string& path, const nlohmann::json& j) {
  // Paths in it are bytes, not always UTF-8: U+FFFD for such a byte, not a lost report.
  write_whole("--report", path,
              j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void write_predictions(const std::string& path, const std::vector<float>& outputs,
                       std::int64_t width, bool regression, const std::vector<std::string>& names,
                       const std::vector<std::string>& class_names,
                       const std::vector<std::string>& ids, const std::string& id_name) {
  std::ostringstream out;
  const auto w = static_cast<std::size_t>(width);
  if (!ids.empty() && ids.size() * w != outputs.size())  // a caller's mismatch, not the data's
    throw std::logic_error("write_predictions: " + std::to_string(ids.size()) + " ids for " +
                           std::to_string(outputs.size() / std::max<std::size_t>(w, 1)) + " rows");
  if (!ids.empty()) out << csv_cell(id_name) << ",";
  if (regression && names.size() == w) {
    for (std::size_t j = 0; j < w; ++j) out << (j ? "," : "") << csv_cell(names[j]);
  } else if (regression) {
    for (std::size_t j = 0; j < w; ++j)
      out << (j ? "," : "") << "prediction" << (w > 1 ? std::to_string(j) : "");
  } else {
    out << "class" << (class_names.empty() ? "" : ",name");
    for (std::size_t j = 0; j < w; ++j) out << ",p" << j;
  }
  out << "\n";
  char cell[32];
  std::vector<double> p(w);
  for (std::size_t r = 0; r + w <= outputs.size(); r += w) {
    const float* row = outputs.data() + r;
    if (!ids.empty()) out << csv_cell(ids[r / w]) << ",";
    if (regression) {
      for (std::size_t j = 0; j < w; ++j) {
        std::snprintf(cell, sizeof(cell), "%.9g", static_cast<double>(row[j]));
        out << (j ? "," : "") << cell;
      }
    } else {  // softmax, max-subtracted; the class is the first largest logit, as accuracy's
      std::size_t best = 0;
      for (std::size_t j = 1; j < w; ++j)
        if (row[j] > row[best]) best = j;
      double sum = 0;
      for (std::size_t j = 0; j < w; ++j) sum += p[j] = std::exp(double{row[j]} - row[best]);
      out << best;
      if (!class_names.empty()) out << "," << csv_cell(class_name(class_names, best));
      for (std::size_t j = 0; j < w; ++j) {
        std::snprintf(cell, sizeof(cell), "%.6g", p[j] / sum);
        out << "," << cell;
      }
    }
    out << "\n";
  }
  write_whole("--predictions", path, out.str());
}

}  // namespace cutrain::tools
