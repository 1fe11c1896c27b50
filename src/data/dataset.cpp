#include "cutrain/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cutrain/error.hpp"

namespace cutrain::data {

void Dataset::validate(const std::string& what) const {
  CUTRAIN_CHECK(rows >= 0 && features >= 0, what, ": negative shape");
  CUTRAIN_CHECK(x.size() == static_cast<std::size_t>(rows * features), what, ": ", x.size(),
                " feature values for ", rows, " rows x ", features, " features");
  CUTRAIN_CHECK(labels.empty() || labels.size() == static_cast<std::size_t>(rows), what, ": ",
                labels.size(), " labels for ", rows, " rows");
  CUTRAIN_CHECK(targets.size() == static_cast<std::size_t>(rows * target_width) || targets.empty(),
                what, ": ", targets.size(), " target values for ", rows, " rows x ", target_width);
  CUTRAIN_CHECK(row_ids.empty() || row_ids.size() == static_cast<std::size_t>(rows), what, ": ",
                row_ids.size(), " row ids for ", rows, " rows");
  for (std::size_t i = 0; i < labels.size(); ++i)
    CUTRAIN_CHECK(labels[i] >= 0 && labels[i] < classes, what, ": label ", labels[i], " of row ", i,
                  " is outside [0, ", classes, ")");
  for (std::size_t i = 0; i < x.size(); ++i)
    CUTRAIN_CHECK(std::isfinite(x[i]), what, ": feature value ", x[i], " at row ",
                  i / static_cast<std::size_t>(std::max<std::int64_t>(features, 1)),
                  " is not finite");
}

Dataset Dataset::subset(std::span<const std::int64_t> index) const {
  Dataset out;
  out.rows = static_cast<std::int64_t>(index.size());
  out.features = features;
  out.classes = classes;
  out.class_names = class_names;
  out.categorical = categorical;
  out.feature_columns = feature_columns;
  out.target_width = target_width;
  out.x.resize(index.size() * static_cast<std::size_t>(features));
  if (!labels.empty()) out.labels.resize(index.size());
  if (!targets.empty()) out.targets.resize(index.size() * static_cast<std::size_t>(target_width));
  if (!row_ids.empty()) out.row_ids.resize(index.size());
  for (std::size_t k = 0; k < index.size(); ++k) {
    const std::int64_t r = index[k];
    CUTRAIN_CHECK(r >= 0 && r < rows, "Dataset::subset: row ", r, " outside [0, ", rows, ")");
    std::copy_n(x.begin() + r * features, features,
                out.x.begin() + static_cast<std::ptrdiff_t>(k) * features);
    if (!labels.empty()) out.labels[k] = labels[static_cast<std::size_t>(r)];
    if (!row_ids.empty()) out.row_ids[k] = row_ids[static_cast<std::size_t>(r)];
    if (!targets.empty())
      std::copy_n(targets.begin() + r * target_width, target_width,
                  out.targets.begin() + static_cast<std::ptrdiff_t>(k) * target_width);
  }
  return out;
}

void scale(Dataset& d, float factor) {
  CUTRAIN_CHECK(std::isfinite(factor), "scale: factor ", factor, " must be finite");
  for (float& v : d.x) v *= factor;
}

Standardizer Standardizer::fit(const Dataset& train) {
  CUTRAIN_CHECK(train.rows > 0, "Standardizer::fit: the training split is empty");
  const auto f = static_cast<std::size_t>(train.features);
  std::vector<double> sum(f, 0.0), sq(f, 0.0);
  for (std::int64_t r = 0; r < train.rows; ++r)
    for (std::size_t c = 0; c < f; ++c) {
      const double v = train.x[static_cast<std::size_t>(r) * f + c];
      sum[c] += v;
      sq[c] += v * v;
    }
  Standardizer s;
  s.mean.resize(f);
  s.stddev.resize(f);
  const auto n = static_cast<double>(train.rows);
  for (std::size_t c = 0; c < f; ++c) {
    const double mean = sum[c] / n;
    const double var = std::max(0.0, sq[c] / n - mean * mean);  // population variance
    s.mean[c] = static_cast<float>(mean);
    s.stddev[c] = static_cast<float>(std::sqrt(var));
  }
  return s;
}

void Standardizer::apply(Dataset& d) const {
  CUTRAIN_CHECK(mean.size() == static_cast<std::size_t>(d.features), "Standardizer::apply: fit on ",
                mean.size(), " features, applied to ", d.features);
  const auto f = static_cast<std::size_t>(d.features);
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    const std::size_t c = i % f;
    d.x[i] = stddev[c] > 0 ? (d.x[i] - mean[c]) / stddev[c] : d.x[i] - mean[c];
  }
}

Imputer Imputer::fit(const Dataset& train, Strategy strategy) {
  CUTRAIN_CHECK(train.rows > 0, "Imputer::fit: the training split is empty");
  const auto f = static_cast<std::size_t>(train.features);
  Imputer imp;
  imp.fill.resize(f);
  std::vector<float> present;
  present.reserve(static_cast<std::size_t>(train.rows));
  for (std::size_t c = 0; c < f; ++c) {
    present.clear();
    for (std::size_t i = c; i < train.x.size(); i += f)
      if (!std::isnan(train.x[i])) present.push_back(train.x[i]);
    CUTRAIN_CHECK(!present.empty(), "Imputer::fit: feature ", c, " has no value in the ",
                  train.rows, " training rows, so nothing can fill it; drop the column");
    const std::size_t n = present.size();
    if (strategy == Strategy::kMean) {
      double sum = 0.0;  // in double: the nearest float to the mean of the floats
      for (const float v : present) sum += v;
      imp.fill[c] = static_cast<float>(sum / static_cast<double>(n));
    } else {
      const auto mid = present.begin() + static_cast<std::ptrdiff_t>(n / 2);
      std::nth_element(present.begin(), mid, present.end());
      double median = *mid;
      if (n % 2 == 0)  // the largest of the lower half, averaged in double
        median = (median + static_cast<double>(*std::max_element(present.begin(), mid))) / 2.0;
      imp.fill[c] = static_cast<float>(median);
    }
  }
  return imp;
}

std::int64_t Imputer::apply(Dataset& d) const {
  CUTRAIN_CHECK(fill.size() == static_cast<std::size_t>(d.features), "Imputer::apply: fit on ",
                fill.size(), " features, applied to ", d.features);
  std::int64_t filled = 0;
  const std::size_t f = fill.size();
  for (std::size_t i = 0; i < d.x.size(); ++i)
    if (std::isnan(d.x[i])) {
      d.x[i] = fill[i % f];
      ++filled;
    }
  return filled;
}

std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  // splitmix64 of (seed, epoch) seeds the generator: neighbouring epochs are unrelated.
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (epoch + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  std::mt19937_64 rng(z ^ (z >> 31));
  // Fisher-Yates with an explicit bounded draw (std::shuffle's is implementation-defined).
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto bound = static_cast<std::uint64_t>(i + 1);
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    std::uint64_t r;
    do r = rng();
    while (r >= limit);
    std::swap(p[static_cast<std::size_t>(i)], p[r % bound]);
  }
  return p;
}

namespace {

// Rows per class, for `who`; refuses a data set without labels (`without`: what to do instead)
// and a label outside [0, classes).
std::vector<std::int64_t> class_counts(const Dataset& d, const char* who, const char* without) {
  CUTRAIN_CHECK(d.classification() && d.classes > 0, who, ": the data set has no class labels (",
                without, ")");
  std::vector<std::int64_t> count(static_cast<std::size_t>(d.classes), 0);
  for (const std::int32_t label : d.labels) {
    CUTRAIN_CHECK(label >= 0 && label < d.classes, who, ": label ", label, " is outside [0, ",
                  d.classes, ")");
    ++count[static_cast<std::size_t>(label)];
  }
  return count;
}

}  // namespace

std::vector<float> balanced_class_weights(const Dataset& d) {
  const std::vector<std::int64_t> count =
      class_counts(d, "balanced_class_weights", "regression targets are not weighted by class");
  std::vector<float> w(count.size());
  for (std::size_t c = 0; c < count.size(); ++c) {
    CUTRAIN_CHECK(count[c] > 0, "balanced_class_weights: class ", c,
                  d.class_names.size() > c ? " (" + d.class_names[c] + ")" : std::string(),
                  " has no sample in the data set, so no weight can balance it; give the weights "
                  "explicitly or drop the class");
    // In double: rows / (C count) is then the nearest float to the exact ratio.
    w[c] = static_cast<float>(static_cast<double>(d.labels.size()) /
                              (static_cast<double>(d.classes) * static_cast<double>(count[c])));
  }
  return w;
}

std::pair<Dataset, Dataset> split(const Dataset& d, double validation_fraction,
                                  std::uint64_t seed) {
  CUTRAIN_CHECK(validation_fraction >= 0 && validation_fraction < 1, "split: validation fraction ",
                validation_fraction, " is invalid; valid: [0, 1)");
  const std::vector<std::int64_t> p = permutation(d.rows, seed, ~0ULL);
  const auto n_val =
      static_cast<std::size_t>(std::llround(validation_fraction * static_cast<double>(d.rows)));
  const std::span<const std::int64_t> all(p);
  return {d.subset(all.subspan(n_val)), d.subset(all.subspan(0, n_val))};
}

std::pair<Dataset, Dataset> stratified_split(const Dataset& d, double validation_fraction,
                                             std::uint64_t seed) {
  CUTRAIN_CHECK(validation_fraction >= 0 && validation_fraction < 1,
                "stratified_split: validation fraction ", validation_fraction,
                " is invalid; valid: [0, 1)");
  const std::vector<std::int64_t> count =
      class_counts(d, "stratified_split", "regression targets: use split()");
  const auto n_val = std::llround(validation_fraction * static_cast<double>(d.rows));
  // Quotas: the floor of each class's exact share, then one more for the largest remainders.
  std::vector<std::int64_t> quota(count.size());
  std::vector<std::pair<double, std::size_t>> remainder;
  std::int64_t given = 0;
  for (std::size_t c = 0; c < count.size(); ++c) {
    const double exact =
        static_cast<double>(n_val) * static_cast<double>(count[c]) / static_cast<double>(d.rows);
    quota[c] = static_cast<std::int64_t>(std::floor(exact));
    given += quota[c];
    remainder.emplace_back(-(exact - static_cast<double>(quota[c])), c);  // largest first
  }
  std::sort(remainder.begin(), remainder.end());
  for (std::size_t k = 0; given < n_val; ++k, ++given) ++quota[remainder[k].second];
  const std::vector<std::int64_t> p = permutation(d.rows, seed, ~0ULL);
  std::vector<std::int64_t> train_rows, val_rows;
  for (const std::int64_t r : p) {
    std::int64_t& q = quota[static_cast<std::size_t>(d.labels[static_cast<std::size_t>(r)])];
    if (q > 0) {
      --q;
      val_rows.push_back(r);
    } else {
      train_rows.push_back(r);
    }
  }
  return {d.subset(train_rows), d.subset(val_rows)};
}

std::vector<std::int64_t> assign_folds(const Dataset& d, std::int64_t folds, std::uint64_t seed,
                                       bool stratified) {
  CUTRAIN_CHECK(folds >= 2 && folds <= d.rows, "assign_folds: ", folds, " folds of ", d.rows,
                " rows is invalid; valid: 2 to the number of rows");
  const std::vector<std::int64_t> p = permutation(d.rows, seed, ~0ULL);
  std::vector<std::int64_t> fold_of(p.size());
  if (stratified) {
    const std::vector<std::int64_t> count =
        class_counts(d, "assign_folds (stratified)", "regression targets: stratified = false");
    std::vector<std::int64_t> next(count.size());  // each class's first fold
    std::int64_t dealt = 0;
    for (std::size_t c = 0; c < count.size(); ++c) {
      next[c] = dealt % folds;
      dealt += count[c];
    }
    for (const std::int64_t r : p) {
      std::int64_t& f = next[static_cast<std::size_t>(d.labels[static_cast<std::size_t>(r)])];
      fold_of[static_cast<std::size_t>(r)] = f;
      f = (f + 1) % folds;
    }
  } else {
    const std::int64_t base = d.rows / folds, extra = d.rows % folds;
    std::size_t i = 0;
    for (std::int64_t f = 0; f < folds; ++f)
      for (std::int64_t k = 0; k < base + (f < extra ? 1 : 0); ++k)
        fold_of[static_cast<std::size_t>(p[i++])] = f;
  }
  return fold_of;
}

std::pair<Dataset, Dataset> fold_split(const Dataset& d, std::int64_t folds, std::int64_t fold,
                                       std::uint64_t seed, bool stratified) {
  const std::vector<std::int64_t> fold_of = assign_folds(d, folds, seed, stratified);
  CUTRAIN_CHECK(fold >= 0 && fold < folds, "fold_split: fold ", fold, " is invalid; valid: 0 to ",
                folds - 1);
  std::vector<std::int64_t> train_rows, val_rows;
  for (std::int64_t r = 0; r < d.rows; ++r)
    (fold_of[static_cast<std::size_t>(r)] == fold ? val_rows : train_rows).push_back(r);
  return {d.subset(train_rows), d.subset(val_rows)};
}

}  // namespace cutrain::data
