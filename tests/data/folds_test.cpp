// K-fold cross-validation splits (data::fold_split).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "cutrain/data.hpp"
#include "cutrain/error.hpp"

namespace cutrain::data {
namespace {

// Row r has the single feature r and the label given: a part's rows are read off its features.
Dataset labelled(const std::vector<std::int32_t>& labels, std::int32_t classes) {
  Dataset d;
  d.rows = static_cast<std::int64_t>(labels.size());
  d.features = 1;
  d.classes = classes;
  d.labels = labels;
  for (std::int64_t r = 0; r < d.rows; ++r) d.x.push_back(static_cast<float>(r));
  return d;
}

std::vector<std::int64_t> rows_of(const Dataset& d) {
  std::vector<std::int64_t> r;
  for (const float v : d.x) r.push_back(static_cast<std::int64_t>(v));
  return r;
}

// Each row in exactly one fold's validation part; each train part the complement of its fold.
void expect_partition(const Dataset& d, std::int64_t folds, std::uint64_t seed, bool stratified,
                      std::vector<std::vector<std::int64_t>>* val_rows) {
  std::vector<int> seen(static_cast<std::size_t>(d.rows), 0);
  for (std::int64_t k = 0; k < folds; ++k) {
    const auto [train, val] = fold_split(d, folds, k, seed, stratified);
    const std::vector<std::int64_t> v = rows_of(val), t = rows_of(train);
    EXPECT_EQ(static_cast<std::int64_t>(v.size() + t.size()), d.rows);
    std::set<std::int64_t> both(v.begin(), v.end());
    both.insert(t.begin(), t.end());
    EXPECT_EQ(static_cast<std::int64_t>(both.size()), d.rows) << "fold " << k;
    for (const std::int64_t r : v) ++seen[static_cast<std::size_t>(r)];
    val_rows->push_back(v);
    // Labels travel with their rows.
    for (std::size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(val.labels[i], d.labels[static_cast<std::size_t>(v[i])]);
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), d.rows) << "a row in no fold or in two";
}

TEST(FoldSplit, KFoldSizesAndConsecutiveBlocksOfTheSeededOrder) {
  std::vector<std::int32_t> labels(23);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
  const Dataset d = labelled(labels, 3);
  std::vector<std::vector<std::int64_t>> val;
  expect_partition(d, 5, 7, false, &val);
  // scikit-learn's KFold sizes: 23 = 5 + 5 + 5 + 4 + 4, the folds consecutive blocks of the
  // permutation split() uses, each part in the data set's order (KFold's indices are sorted).
  const std::vector<std::int64_t> p = permutation(23, 7, ~0ULL);
  const std::vector<std::int64_t> fold_of = assign_folds(d, 5, 7);
  std::size_t start = 0;
  for (std::size_t k = 0; k < 5; ++k) {
    const std::size_t size = k < 3 ? 5 : 4;
    std::vector<std::int64_t> block(p.begin() + static_cast<std::ptrdiff_t>(start),
                                    p.begin() + static_cast<std::ptrdiff_t>(start + size));
    std::sort(block.begin(), block.end());
    EXPECT_EQ(val[k], block) << "fold " << k;
    for (const std::int64_t r : block)
      EXPECT_EQ(fold_of[static_cast<std::size_t>(r)], static_cast<std::int64_t>(k));
    const std::vector<std::int64_t> train =
        rows_of(fold_split(d, 5, static_cast<std::int64_t>(k), 7).first);
    EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
    start += size;
  }
  // Seeded: the same folds again, other ones under another seed.
  EXPECT_EQ(rows_of(fold_split(d, 5, 2, 7).second), val[2]);
  EXPECT_NE(rows_of(fold_split(d, 5, 0, 8).second), val[0]);
}

TEST(FoldSplit, StratifiedFoldsHoldEachClassShareToWithinOneRow) {
  // 100 rows: 50, 30, 15 and 5 of classes 0-3, in blocks (the last class first).
  std::vector<std::int32_t> labels;
  for (int i = 0; i < 50; ++i) labels.push_back(0);
  for (int i = 0; i < 30; ++i) labels.push_back(1);
  for (int i = 0; i < 15; ++i) labels.push_back(2);
  for (int i = 0; i < 5; ++i) labels.push_back(3);
  std::reverse(labels.begin(), labels.end());
  const Dataset d = labelled(labels, 4);
  std::vector<std::vector<std::int64_t>> val;
  expect_partition(d, 4, 3, true, &val);
  const std::int64_t count[4] = {50, 30, 15, 5};
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(val[k].size(), 25U) << "fold " << k;
    std::int64_t in_fold[4] = {0, 0, 0, 0};
    for (const std::int64_t r : val[k]) ++in_fold[labels[static_cast<std::size_t>(r)]];
    for (int c = 0; c < 4; ++c) {
      EXPECT_GE(in_fold[c], count[c] / 4) << "fold " << k << " class " << c;
      EXPECT_LE(in_fold[c], (count[c] + 3) / 4) << "fold " << k << " class " << c;
    }
  }
  // Unstratified folds of the same data need not keep the shares: the stratified ones differ.
  std::vector<std::vector<std::int64_t>> plain;
  expect_partition(d, 4, 3, false, &plain);
  EXPECT_NE(plain, val);
}

TEST(FoldSplit, RefusesBadFoldsAndStratifiedRegression) {
  const Dataset d = labelled({0, 1, 0, 1, 0}, 2);
  EXPECT_THROW(fold_split(d, 1, 0, 0), Error);
  EXPECT_THROW(fold_split(d, 6, 0, 0), Error);  // more folds than rows
  EXPECT_THROW(assign_folds(d, 6, 0), Error);
  EXPECT_THROW(fold_split(d, 5, 5, 0), Error);
  EXPECT_THROW(fold_split(d, 5, -1, 0), Error);
  EXPECT_EQ(fold_split(d, 5, 4, 0).second.rows, 1);  // leave-one-out is allowed
  Dataset regression = d;
  regression.labels.clear();
  regression.classes = 0;
  regression.target_width = 1;
  regression.targets = {0, 1, 2, 3, 4};
  EXPECT_THROW(fold_split(regression, 2, 0, 0, /*stratified=*/true), Error);
  const auto [train, val] = fold_split(regression, 2, 1, 0);
  EXPECT_EQ(train.rows + val.rows, 5);
  EXPECT_EQ(val.targets.size(), static_cast<std::size_t>(val.rows));
}

}  // namespace
}  // namespace cutrain::data
