#pragma once
// In-memory datasets: float32 features (row-major, rows x features) with int32 class labels or
// float targets, and the preprocessing the trainer uses.

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace cutrain::data {

/// A CSV column one-hot encoded into features (CsvOptions::categorical): its position among the
/// file's feature columns (the label or targets not counted), its header name, and its categories
/// in the order of their 0/1 features.
struct CategoricalColumn {
  std::string name;                     ///< the column's header name
  std::int64_t column = 0;              ///< its position among the file's columns
  std::vector<std::string> categories;  ///< sorted; one 0/1 feature each
};

/// Samples in memory: features row-major [rows, features] and class labels or float targets.
struct Dataset {
  std::int64_t rows = 0;                 ///< samples
  std::int64_t features = 0;             ///< values per sample
  std::vector<float> x;                  ///< rows * features
  std::vector<std::int32_t> labels;      ///< rows (classification), or empty
  std::int32_t classes = 0;              ///< labels lie in [0, classes)
  std::vector<std::string> class_names;  ///< by label, when the labels were read as text, or empty
  std::vector<float> targets;            ///< rows * target_width (regression), or empty
  std::int64_t target_width = 0;         ///< regression targets per sample (0 for labels)
  /// CSV columns one-hot encoded into x, by column (empty: none); each put its categories'
  /// features where the column was.
  std::vector<CategoricalColumn> categorical;
  /// CSV with a header: the names of the file's feature columns, in file order (a one-hot column
  /// once), so that another file's columns can be checked against them (Note [feature columns by
  /// name]); empty without a header and for other formats.
  std::vector<std::string> feature_columns;
  /// Each row's identifier as written, when the CSV was read with CsvOptions::id_column (Note
  /// [id column]): rows entries, or empty. subset() keeps them with their rows.
  std::vector<std::string> row_ids;

  bool classification() const { return !labels.empty(); }  ///< labels, not targets
  /// Throws cutrain::Error naming what is inconsistent (sizes, label range, non-finite values).
  void validate(const std::string& what = "dataset") const;
  /// The rows in `index` order (bounds-checked).
  Dataset subset(std::span<const std::int64_t> index) const;
};

/// x <- x * factor (pixels / 255 -> [0, 1]).
void scale(Dataset& d, float factor);

/// Per-feature standardization, x <- (x - mean) / std, with statistics from the training split
/// only (fit) applied to any split (apply). Constant features (std 0) are only centered.
struct Standardizer {
  std::vector<float> mean;    ///< per feature
  std::vector<float> stddev;  ///< per feature, the population standard deviation
  static Standardizer fit(const Dataset& train);  ///< the training split's statistics
  void apply(Dataset& d) const;  ///< (x - mean) / stddev per feature (a constant feature: x - mean)
};

/// Missing feature values - NaN, as CsvOptions::allow_missing reads an empty or "NA" cell - filled
/// per feature with a statistic of the training split's present values (fit), applied to any
/// split (apply): scikit-learn's SimpleImputer(strategy="mean" | "median"; an even count's median
/// is the mean of the middle two). fit() refuses a feature with no value present (SimpleImputer
/// would drop the column and shift every later one).
struct Imputer {
  /// SimpleImputer's strategy "mean" or "median".
  enum class Strategy { kMean, kMedian };
  std::vector<float> fill;  ///< by feature
  static Imputer fit(
      const Dataset& train,
      Strategy strategy);  ///< each feature's fill from the training split's present values
  /// NaN -> fill[feature]; returns how many values it filled.
  std::int64_t apply(Dataset& d) const;
};

/// Class weights that make every class count as much in a weighted cross-entropy
/// (nn::SoftmaxCrossEntropy's class_weights) however rare it is: scikit-learn's "balanced",
/// w_c = rows / (classes x count_c). Throws if a class in [0, classes) has no sample (its weight
/// would be infinite; scikit-learn refuses it too) or the data set has no labels.
std::vector<float> balanced_class_weights(const Dataset& d);

/// A seeded random split: returns (train, validation) with round(fraction * rows) validation
/// rows; fraction in [0, 1).
std::pair<Dataset, Dataset> split(const Dataset& d, double validation_fraction, std::uint64_t seed);

/// split() keeping each class's share: the validation rows hold round(fraction x rows) rows as
/// split()'s do, given out to the classes in proportion to their counts (largest remainders,
/// ties to the lower class; scikit-learn's train_test_split(stratify=y) allots them alike), each
/// class's rows picked in the order of the same seeded permutation. For labels only.
std::pair<Dataset, Dataset> stratified_split(const Dataset& d, double validation_fraction,
                                             std::uint64_t seed);

/// K-fold cross-validation: each row's fold, in [0, folds). Rows are taken in the order of the
/// seeded permutation split() uses. Plain: fold k gets the next rows / folds rows of that order,
/// the first rows % folds folds one row more (scikit-learn's KFold(shuffle=True) sizes).
/// Stratified (labels only): each class's rows, in that order, are dealt to the folds in turn,
/// the count running on from one class to the next, so a fold holds each class's share to within
/// one row and fold sizes differ by at most one (as scikit-learn's StratifiedKFold balances
/// them). folds in [2, rows].
std::vector<std::int64_t> assign_folds(const Dataset& d, std::int64_t folds, std::uint64_t seed,
                                       bool stratified = false);

/// Fold `fold` (0-based) of assign_folds() as (train, validation): its rows are the validation
/// part, the others the training part, both in the data set's order (scikit-learn's KFold gives
/// sorted indices too). fold in [0, folds).
std::pair<Dataset, Dataset> fold_split(const Dataset& d, std::int64_t folds, std::int64_t fold,
                                       std::uint64_t seed, bool stratified = false);

/// The seeded permutation of [0, n) used for epoch `epoch` (std::mt19937_64 Fisher-Yates seeded
/// from a mix of seed and epoch: the same pair always gives the same order).
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch);

}  // namespace cutrain::data
