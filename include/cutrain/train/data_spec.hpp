#pragma once
// Note [data spec in exports]: what a model expects of its input and what its outputs mean,
// carried beside the weights in exports and checkpoints (metadata "cutrain.data", JSON), so that
// a model file alone predicts new data the way it was trained - `cutrain-train --model-from
// m.safetensors --predict-csv new.csv --predictions out.csv` needs no training data:
//   CSV columns left out (`drop_columns`, and the rows' `id_column`), columns one-hot encoded with
//   the training file's categories (`categorical`, read with CsvOptions::categories), missing
//   values filled with `impute` (data::Imputer; read with CsvOptions::allow_missing), x <- x *
//   scale, then, when `mean` is given, x <- (x - mean) / stddev per feature (0 stddev: centered
//   only; data::Standardizer's rule), and the outputs are the classes `class_names` (text labels)
//   or the regression targets `target_names`.
// Python ignores the entry (tools/cutrain_torch.py build_model reads "cutrain.modules" only).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cutrain/data/dataset.hpp"

namespace cutrain::train {

inline constexpr const char* kDataSpecKey = "cutrain.data";

/// How raw features are prepared for a model (scale, standardization, one-hot categories, fill
/// values) and the class or target names; carried by exports.
struct DataSpec {
  float scale = 1.0F;                     ///< features are multiplied by it (Fashion-MNIST: 1/255)
  std::vector<float> mean;                ///< per feature; empty: no standardization
  std::vector<float> stddev;              ///< per feature; empty: no standardization
  bool regression = false;                ///< float targets, not classes
  std::vector<std::string> class_names;   ///< classification with text labels, by output
  std::vector<std::string> target_names;  ///< regression: the outputs' names, when known
  std::vector<data::CategoricalColumn> categorical;  ///< one-hot CSV columns (read time, not apply)
  /// The training CSV's feature column names (Dataset::feature_columns), or empty: a file to
  /// predict with a header must name the same columns in the same order.
  std::vector<std::string> feature_columns;
  /// CSV columns the training left out (CsvOptions::drop_columns): a file to predict drops them
  /// too where it has them.
  std::vector<std::string> drop_columns;
  /// The CSV column that identified the training rows (CsvOptions::id_column), or empty: a file
  /// to predict that has it gets its ids written beside the predictions (Note [id column]).
  std::string id_column;
  std::vector<float> impute;  ///< by feature; empty: missing values refused

  /// Fills missing values, scales, then standardizes `d` (its feature count must match the
  /// statistics'); returns how many values it filled.
  std::int64_t apply(data::Dataset& d) const;
  std::string to_json() const;  ///< what exports store as "cutrain.data"
  /// Note [data spec on resume]: a model reads features by position, so a resume whose data is
  /// prepared otherwise - another --drop-columns or --id-column, --standardize added - went on
  /// training on other inputs without a word. Trainer::resume compares the checkpoint's spec
  /// with TrainerOptions::checkpoint_metadata's (when both have one) before applying anything.
  /// This says how data prepared by this spec differs from what a model trained with `saved`
  /// reads - the feature columns (names, order, one-hot categories), the outputs
  /// (regression or classes, their names), the scale, and whether features are standardized or
  /// imputed - or "" when it does not. The statistics' values are not compared: refitted on the
  /// same training split they are the same, and on a grown file they are what that run fits.
  std::string differs_from(const DataSpec& saved) const;
  /// Throws cutrain::Error naming `where` for malformed JSON, non-finite or negative numbers,
  /// mean and stddev of different lengths, or a one-hot column without categories, with a
  /// category twice, or given twice.
  static DataSpec from_json(std::string_view json, const std::string& where);
};

}  // namespace cutrain::train
