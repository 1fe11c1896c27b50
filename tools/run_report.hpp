#pragma once
// What cutrain-train prints and writes at the end of a run (mini-batch or full-batch).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "cutrain/train/roc_auc.hpp"
#include "cutrain/train/trainer.hpp"

namespace cutrain::tools {

// The test set's figures on stdout, without a newline: accuracy and cross-entropy, or for
// regression the MSE.
void print_test_result(const train::EvalResult& r, bool regression);

// Note [divergence ends the run]: a model whose outputs overflow on the test set (finite weights
// grown huge: no step was skipped) has diverged too. Throws cutrain::Error saying so when the
// test loss is not finite - before it is printed, and before the predictions and exports.
void check_test_loss(const train::EvalResult& r);

// The test set by class, from one pass of predictions: the confusion matrix and the one-vs-rest
// ROC AUC (include/cutrain/train/roc_auc.hpp).
struct ClassResults {
  train::ConfusionMatrix matrix;
  train::RocAuc auc;
};
ClassResults class_results(const std::vector<float>& logits, std::int64_t classes,
                           const std::vector<std::int32_t>& labels);
// Above this many classes the per-class table and the confusion matrix (classes^2 counts) are
// left out, with a line saying so: a run with --max-classes raised must not die in its report.
inline constexpr std::int64_t kMaxClassesReported = 1000;
// class_results when the class count allows it (else prints why not and returns nothing).
std::optional<ClassResults> class_results_if_small(const std::vector<float>& logits,
                                                   std::int64_t classes,
                                                   const std::vector<std::int32_t>& labels);
// A table on stdout (rows, recall = the class's accuracy, precision, F1, ROC AUC; names where
// known), and the report's "test_per_class" rows, "test_macro_f1", "test_roc_auc" (macro) and
// "test_confusion_matrix" (rows: true class, columns: predicted).
void print_per_class(const ClassResults& r, const std::vector<std::string>& names);
void add_per_class(nlohmann::json& report, const ClassResults& r,
                   const std::vector<std::string>& names);

// Regression's counterpart: per target (named by --target when it named them) MSE, MAE and R^2,
// on stdout and as the report's "test_per_target".
void print_per_target(const std::vector<train::TargetMetrics>& m,
                      const std::vector<std::string>& names);
void add_per_target(nlohmann::json& report, const std::vector<train::TargetMetrics>& m,
                    const std::vector<std::string>& names);

// NaN (regression's accuracy) as JSON null.
nlohmann::json json_number(double v);

// Note [outputs written whole]: `text` replaces the file at `path` only once it is complete - a
// temporary file renamed over it, as checkpoints are written - so a full disk or a kill mid-write
// leaves the previous file, never a truncated one (io::write_file_atomic: a device or pipe there,
// /dev/stdout, is written in place). A failure is the disk's (the path was checked before training,
// check_outputs): a std::runtime_error naming `flag`.
void write_whole(const std::string& flag, const std::string& path, const std::string& text);

// Note [every output written]: the files a run writes at its end (--predictions, the exports,
// --report, a full-batch run's --save) are independent: one that cannot be written (a full disk,
// a pipe whose reader left) must not cost the others, which may be the only copy of the model.
// Each is attempted; a failure is printed when it happens ("cutrain-train: error: FLAG: why")
// and check() ends the run with exit 1 after the last.
class EndOfRunOutputs {
 public:
  template <class Write>
  void attempt(const char* flag, Write&& write) {
    try {
      write();
    } catch (const std::exception& e) {
      failed(flag, e.what());
    }
  }
  // Throws std::runtime_error naming the outputs that were not written, if any.
  void check() const;

 private:
  void failed(const char* flag, std::string why);
  std::vector<std::string> failed_;
};

// --report: the JSON written at the end (Note [outputs written whole]).
void write_report(const std::string& path, const nlohmann::json& j);

// --predictions: `outputs` [rows, width] row-major as CSV with a header - "class,p0,...,pK" (the
// argmax and the softmax of each row's logits, in double; when the labels were text, their
// names in a "name" column after "class") or, for regression, the targets' names when known, else
// "prediction" ("prediction0,..." for several). With `ids` (Note [id column]: a row's id from
// --id-column, as written), the first column is each row's id under the header `id_name`, as
// a Kaggle submission pairs them. Written whole, like the report.
void write_predictions(const std::string& path, const std::vector<float>& outputs,
                       std::int64_t width, bool regression,
                       const std::vector<std::string>& names = {},
                       const std::vector<std::string>& class_names = {},
                       const std::vector<std::string>& ids = {}, const std::string& id_name = {});

}  // namespace cutrain::tools
