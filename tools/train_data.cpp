// cutrain-train's data (tools/train_data.hpp).
#include "tools/train_data.hpp"

#include "tools/class_checks.hpp"
#include "tools/feature_columns.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace cutrain::tools {
namespace {

// "a,b,,c" -> {"a", "b", "", "c"} (empty names kept, for the readers to refuse); "" -> {}.
std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> items;
  for (std::size_t start = 0; !text.empty() && start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

// Note [id column]: a feature column whose values number the rows (0, 1, 2, ... or 1, 2, 3, ...)
// - Titanic's PassengerId, 1 to 891 - was trained on as a feature without a word, and the test
// file's ids (892 on) all lie past the training range. Said, not refused: a day or step number
// can be a feature. Such columns' names (a headerless file's: "feature k") and first values.
std::vector<std::pair<std::string, float>> row_number_columns(const data::Dataset& d) {
  std::vector<std::pair<std::string, float>> found;
  if (d.rows < 10) return found;  // too few rows to tell
  const bool named = !d.feature_columns.empty();
  const std::size_t columns =
      named ? d.feature_columns.size() : static_cast<std::size_t>(d.features);
  const auto f = static_cast<std::size_t>(d.features);
  std::size_t at = 0;  // the column's first feature
  for (std::size_t k = 0; k < columns; ++k) {
    std::size_t width = 1;  // a one-hot column's: its categories
    for (const data::CategoricalColumn& cc : d.categorical)
      if (cc.column == static_cast<std::int64_t>(k)) width = cc.categories.size();
    const float first = d.x[at];
    bool numbers = width == 1 && (first == 0.0F || first == 1.0F);
    for (std::size_t r = 1; numbers && r < static_cast<std::size_t>(d.rows); ++r)
      numbers = d.x[r * f + at] == first + static_cast<float>(r);
    if (numbers)
      found.emplace_back(named ? d.feature_columns[k] : "feature " + std::to_string(k + 1), first);
    at += width;
  }
  return found;
}

// --target: a header name, or a column index (negative: from the end).
data::CsvOptions csv_options(const Config& c) {
  data::CsvOptions o = csv_format(c);
  o.classification = !c.regression;
  o.allow_missing = !c.impute.empty();
  o.categorical = comma_list(c.categorical);
  o.drop_columns = drop_columns(c);
  o.id_column = c.id_column;
  if (c.target.find(',') != std::string::npos) {  // several regression targets, by name
    o.target_names = comma_list(c.target);
    if (!c.regression)
      throw UsageError("--target '" + c.target + "' names several columns: add --regression");
    return o;
  }
  int index = 0;
  const char* end = c.target.data() + c.target.size();
  const auto [ptr, ec] = std::from_chars(c.target.data(), end, index);
  if (ec == std::errc() && ptr == end)
    o.label_index = index;
  else
    o.label_name = c.target;
  return o;
}

// Train and test (and validation, with --val-csv) files: the same feature columns, and for
// classification the classes seen in any of them (a test set may lack the highest label).
// Text labels: the training file's names number the classes in every file.
std::tuple<data::Dataset, data::Dataset, data::Dataset> read_csv_files(const Config& c,
                                                                       data::CsvOptions o) {
  auto read = [&](const std::string& path) {
    try {
      return data::read_csv(path, o);
    } catch (const Error& e) {
      if (!c.regression && says(e, "not a non-negative integer") && !says(e, "an SVM's"))
        throw UsageError(std::string(e.what()) + " (a float target? add --regression)");
      // A column the flags choose that the file does not have is the flag's fault: name it.
      const auto missing = [&](const std::vector<std::string>& names) {
        return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
          return !n.empty() && says(e, "no column named '" + n + "'");
        });
      };
      if (says(e, "would be a feature")) throw UsageError(e.what());
      if (!o.id_column.empty() &&
          (missing({o.id_column}) || says(e, "the id column") || says(e, "id column '")))
        throw UsageError("--id-column '" + c.id_column + "': " + e.what());
      if (says(e, "label column index") || says(e, "label column '") ||
          says(e, "target column '") || missing(o.target_names) || missing({o.label_name}))
        throw UsageError("--target '" + c.target + "': " + e.what());
      if (missing(o.categorical) || says(e, "cannot also be a categorical feature") ||
          says(e, "' given twice"))
        throw UsageError("--categorical '" + c.categorical + "': " + e.what());
      if (missing(o.drop_columns) || says(e, "cannot also be dropped") ||
          says(e, "is to be dropped twice") || says(e, "columns to drop are named"))
        throw UsageError("--drop-columns '" + c.drop_columns + "': " + e.what());
      throw;
    }
  };
  o.label_chosen = c.given.count("--target") != 0;  // Note [a label column left a feature]
  data::Dataset train = read(c.train_csv);
  o.label_chosen = true;  // the other files: their columns are checked against the training file's
  o.class_names = train.class_names;
  o.categories = train.categorical;  // the training file's categories, one-hot alike everywhere
  data::Dataset test;                // --folds needs none
  if (!c.test_csv.empty()) test = read(c.test_csv);
  data::Dataset val;
  if (!c.val_csv.empty()) val = read(c.val_csv);
  for (const auto& [flag, path, d] :
       {std::tuple{"--test-csv", &c.test_csv, &test}, std::tuple{"--val-csv", &c.val_csv, &val}})
    if (train.class_names.empty() && !d->class_names.empty())
      throw UsageError(std::string(flag) + " '" + *path + "' has text labels ('" +
                       d->class_names.front() + "', ...) but --train-csv '" + c.train_csv +
                       "' has numbers: give both the same kind");
  // Named columns first: a count says less than the column that differs.
  for (const auto& [flag, path, d] :
       {std::tuple{"--test-csv", &c.test_csv, &test}, std::tuple{"--val-csv", &c.val_csv, &val}})
    if (d->rows > 0)
      check_feature_columns(std::string(flag) + " '" + *path + "'", d->feature_columns,
                            train.feature_columns, kLabelledExtraHint);
  for (const auto& [flag, path, d] :
       {std::tuple{"--test-csv", &c.test_csv, &test}, std::tuple{"--val-csv", &c.val_csv, &val}})
    if (d->rows > 0 && d->features != train.features)
      throw UsageError(std::string(flag) + " '" + *path + "' has " + std::to_string(d->features) +
                       " feature columns but --train-csv '" + c.train_csv + "' has " +
                       std::to_string(train.features));
  if (!c.regression) {
    check_class_count(c, {{"--train-csv", c.train_csv, &train},
                          {"--test-csv", c.test_csv, &test},
                          {"--val-csv", c.val_csv, &val}});
    const std::int32_t classes = std::max({train.classes, test.classes, val.classes});
    train.classes = test.classes = val.classes = classes;
  }
  return {std::move(train), std::move(test), std::move(val)};
}

}  // namespace

std::vector<std::string> drop_columns(const Config& c) {
  return comma_list(c.drop_columns);
}

data::CsvOptions csv_format(const Config& c) {
  data::CsvOptions o;
  o.separator = c.csv_separator == "tab" ? '\t' : c.csv_separator.front();  // one_of checked it
  o.decimal = c.csv_decimal.front();
  using H = data::CsvOptions::Header;
  o.header = c.csv_header == "yes" ? H::kYes : c.csv_header == "no" ? H::kNo : H::kAuto;
  return o;
}

// "X.npy,Y.npy" -> the two paths.
std::pair<std::string, std::string> npy_pair(const char* flag, const std::string& value) {
  const std::size_t comma = value.find(',');
  if (comma == std::string::npos || comma == 0 || comma + 1 == value.size() ||
      value.find(',', comma + 1) != std::string::npos)
    throw UsageError(std::string(flag) + " '" + value +
                     "': give the features and the targets as X.npy,Y.npy");
  return {value.substr(0, comma), value.substr(comma + 1)};
}

// --train-npy / --test-npy / --val-npy: the same feature count everywhere, the same target width
// (regression), and one class count (the largest label over the files, as for CSV).
void read_npy_files(const Config& c, TrainData& d) {
  // A file of 0 rows is refused here, named - not blamed on --val-fraction, or found after
  // training when the test set is evaluated.
  auto read = [&](const char* flag, const std::string& value) {
    const auto [x, y] = npy_pair(flag, value);
    data::Dataset part = data::load_npy(x, y, c.regression);
    if (part.rows == 0)
      throw UsageError(std::string(flag) + " '" + x + "' has no rows (shape (0, ...))");
    return part;
  };
  d.train = read("--train-npy", c.train_npy);
  if (!c.test_npy.empty()) d.test = read("--test-npy", c.test_npy);
  if (!c.val_npy.empty()) d.val = read("--val-npy", c.val_npy);
  for (const auto& [flag, part] :
       {std::pair{"--test-npy", &d.test}, std::pair{"--val-npy", &d.val}}) {
    if (part->rows == 0) continue;
    if (part->features != d.train.features)
      throw UsageError(std::string(flag) + " has " + std::to_string(part->features) +
                       " features per sample but --train-npy has " +
                       std::to_string(d.train.features));
    if (part->target_width != d.train.target_width)
      throw UsageError(std::string(flag) + " has " + std::to_string(part->target_width) +
                       " targets per sample but --train-npy has " +
                       std::to_string(d.train.target_width));
  }
  if (!c.regression) {
    check_class_count(c, {{"--train-npy", c.train_npy, &d.train},
                          {"--test-npy", c.test_npy, &d.test},
                          {"--val-npy", c.val_npy, &d.val}});
    const std::int32_t classes = std::max({d.train.classes, d.test.classes, d.val.classes});
    d.train.classes = d.test.classes = d.val.classes = classes;
  }
}

TrainData read_train_data(const Config& c) {
  TrainData d;
  d.regression = c.regression;
  if (!c.train_npy.empty()) {
    read_npy_files(c, d);
  } else if (c.train_csv.empty()) {
    if (!std::filesystem::is_directory(c.data))
      throw UsageError("--data: directory '" + c.data +
                       "' does not exist (apt-get install dataset-fashion-mnist, or pass the "
                       "directory holding the IDX files)");
    d.train = data::load_fashion_mnist(c.data, "train");
    d.test = data::load_fashion_mnist(c.data, "test");
    check_class_count(c, {{"--data", c.data, &d.train}, {"--data", c.data, &d.test}});
    d.spec.scale = 1.0F / 255.0F;
    data::scale(d.train, d.spec.scale);
    data::scale(d.test, d.spec.scale);
    d.class_names.assign(std::begin(data::kFashionMnistClasses),
                         std::end(data::kFashionMnistClasses));
  } else {
    const data::CsvOptions o = csv_options(c);
    std::tie(d.train, d.test, d.val) = read_csv_files(c, o);
    const bool named = !d.train.feature_columns.empty();
    for (const auto& [name, first] : row_number_columns(d.train))
      std::printf(
          "note: --train-csv's %s%s%s numbers the rows from %g, trained as a feature: an "
          "identifier? %s\n",
          named ? "column '" : "", name.c_str(), named ? "'" : "", static_cast<double>(first),
          named ? "leave it out with --id-column (written beside --predictions) or "
                  "--drop-columns"
                : "leave it out of the file, or give it a header to name it by");
    d.class_names = d.train.class_names;  // text labels: the per-class report's names
    // Regression targets named by --target head the --predictions columns.
    d.target_names = o.target_names;
    if (d.regression && d.target_names.empty() && !o.label_name.empty())
      d.target_names = {o.label_name};
  }
  if (c.train_subset > 0 && c.train_subset < d.train.rows) {
    std::vector<std::int64_t> first(static_cast<std::size_t>(c.train_subset));
    for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<std::int64_t>(i);
    d.train = d.train.subset(first);
  }
  if (c.val_fraction > 0)
    std::tie(d.train, d.val) = c.stratify ? data::stratified_split(d.train, c.val_fraction, c.seed)
                                          : data::split(d.train, c.val_fraction, c.seed);
  if (d.train.rows == 0)
    throw UsageError("--val-fraction " + CLI::detail::to_string(c.val_fraction) +
                     " leaves none of the " + std::to_string(d.val.rows) +
                     " training samples to train on; lower it (or raise --train-subset)");
  if (c.val_fraction > 0 && d.val.rows == 0)  // fit() would refuse --patience, --monitor
    throw UsageError("--val-fraction " + CLI::detail::to_string(c.val_fraction) + " of " +
                     std::to_string(d.train.rows) +
                     " training samples holds out none to validate on; raise it (or "
                     "--train-subset)");
  if (!c.predict_npy.empty()) {
    d.predict = data::load_npy_features(c.predict_npy);
    if (d.spec.scale != 1.0F) data::scale(d.predict, d.spec.scale);  // as the training data
    if (d.predict.features != d.train.features)
      throw UsageError("--predict-npy '" + c.predict_npy + "' has " +
                       std::to_string(d.predict.features) +
                       " features per sample but the model takes the training data's " +
                       std::to_string(d.train.features));
  }
  if (!c.predict_npy.empty() && d.predict.rows == 0)
    throw UsageError("--predict-npy '" + c.predict_npy + "' has no rows: nothing to predict");
  if (!c.predict_csv.empty()) {
    data::CsvOptions o = csv_format(c);
    o.features_only = true;
    o.drop_columns = drop_columns(c);
    o.id_column = c.id_column;
    o.categories = d.train.categorical;
    o.allow_missing = !c.impute.empty();
    d.predict = data::read_csv(c.predict_csv, o);
    if (d.spec.scale != 1.0F) data::scale(d.predict, d.spec.scale);  // as the training data
    // Named columns first: a count says less than the column that differs.
    check_feature_columns("--predict-csv '" + c.predict_csv + "'", d.predict.feature_columns,
                          d.train.feature_columns);
    if (d.predict.features != d.train.features)
      throw UsageError(
          "--predict-csv '" + c.predict_csv + "' has " + std::to_string(d.predict.features) +
          " columns but the model takes the training data's " + std::to_string(d.train.features) +
          " features (give the feature columns only, in the training file's order)");
    if (d.predict.rows == 0)
      throw UsageError("--predict-csv '" + c.predict_csv + "' has no rows: nothing to predict");
    if (!c.id_column.empty() && d.predict.row_ids.empty())  // Note [id column]
      throw UsageError("--id-column '" + c.id_column + "': --predict-csv '" + c.predict_csv +
                       "' has no such column in its header, so its predictions would have no "
                       "ids; add the column, or leave --id-column out");
  }
  return d;
}

void fit_preprocessing(TrainData& d, const Config& c) {
  if (!c.impute.empty()) {  // the training split's statistics fill every split, before scaling
    const auto imp =
        data::Imputer::fit(d.train, c.impute == "median" ? data::Imputer::Strategy::kMedian
                                                         : data::Imputer::Strategy::kMean);
    for (data::Dataset* split : {&d.train, &d.val, &d.test, &d.predict})
      if (split->rows > 0) d.imputed += imp.apply(*split);
    d.spec.impute = imp.fill;
  }
  if (c.standardize) {
    const auto st = data::Standardizer::fit(d.train);  // training split only
    for (data::Dataset* split : {&d.train, &d.val, &d.test, &d.predict})
      if (split->rows > 0) st.apply(*split);
    d.spec.mean = st.mean;
    d.spec.stddev = st.stddev;
  }
  d.spec.regression = d.regression;
  d.spec.class_names = d.train.class_names;  // text labels
  d.spec.target_names = d.target_names;
  d.spec.categorical = d.train.categorical;
  d.spec.feature_columns = d.train.feature_columns;
  d.spec.drop_columns = drop_columns(c);
  d.spec.id_column = c.id_column;
  d.outputs = d.regression ? d.train.target_width : d.train.classes;
  d.class_weights = class_weights(c, d.train, d.class_names);
}

TrainData load_train_data(const Config& c) {
  TrainData d = read_train_data(c);
  fit_preprocessing(d, c);
  return d;
}

void print_data_summary(const Config& c, const TrainData& d, Device device) {
  const data::Dataset &train = d.train, &val = d.val, &test = d.test;
  std::printf("data: %lld train, %lld validation, %lld test samples of %lld features\n",
              static_cast<long long>(train.rows), static_cast<long long>(val.rows),
              static_cast<long long>(test.rows), static_cast<long long>(train.features));
  // keras.datasets' and torchvision's raw arrays are uint8 images, which the IDX reader scales to
  // [0, 1] and NumPy data keeps as stored: say so where it looks like them (pixels of 0-255 train
  // a default network less well).
  if (!c.train_npy.empty() && !c.standardize && !train.x.empty()) {
    const auto [low, high] = std::minmax_element(train.x.begin(), train.x.end());
    const bool bytes =
        *low >= 0 && *high > 1 && *high <= 255 &&
        std::all_of(train.x.begin(), train.x.end(), [](float v) { return v == std::floor(v); });
    if (bytes)
      std::printf(
          "note: --train-npy's features are whole numbers 0 to %g, trained as stored; "
          "images (uint8 pixels)? save X / 255, or give --standardize\n",
          static_cast<double>(*high));
  }
  if (c.augment_shift > 0 || c.augment_flip) {  // Note [augmentation on the device]
    std::string how = c.augment_shift > 0
                          ? "shifted by up to " + std::to_string(c.augment_shift) + " pixels"
                          : "";
    if (c.augment_flip) how += (how.empty() ? "" : " and ") + std::string("mirrored at random");
    std::printf("augment: each training image %s, on the %s\n", how.c_str(),
                device.is_cpu() ? "CPU" : "GPU");
  }
  if (c.eval_flip)  // Note [test-time flips]
    std::printf(
        "evaluate: each image's outputs averaged with its mirror image's (test-time "
        "flips)\n");
  if (!c.impute.empty())
    std::printf("imputed: %lld missing values filled with the training split's %ss\n",
                static_cast<long long>(d.imputed), c.impute.c_str());
  for (const data::CategoricalColumn& cc : train.categorical) {
    std::printf("one-hot: %s -> %zu features (", cc.name.c_str(), cc.categories.size());
    for (std::size_t k = 0; k < cc.categories.size() && k < 8; ++k)
      std::printf("%s%s", k ? ", " : "", cc.categories[k].c_str());
    std::printf("%s)\n", cc.categories.size() > 8 ? ", ..." : "");
  }
  if (!d.class_weights.empty()) {
    std::printf("class weights:");
    for (std::size_t k = 0; k < d.class_weights.size(); ++k)
      std::printf(" %s=%.4g",
                  k < d.class_names.size() ? d.class_names[k].c_str() : std::to_string(k).c_str(),
                  static_cast<double>(d.class_weights[k]));
    std::printf("\n");
  }
}

}  // namespace cutrain::tools
