// Missing feature values: CsvOptions::allow_missing reads pandas' markers as NaN in feature
// columns only, and data::Imputer fills them as scikit-learn's SimpleImputer does - the expected
// means and medians are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/data/readers.hpp"
#include "support/errors.hpp"

namespace cutrain::data {
namespace {

void expect_error(const std::function<void()>& f, const std::string& what) {
  const std::string e = testing::error_of(f);
  EXPECT_NE(e.find(what), std::string::npos) << e;
}

TEST(MissingValues, MarkersReadAsNanInFeaturesOnly) {
  CsvOptions o;
  o.label_name = "label";
  o.allow_missing = true;
  const Dataset d = parse_csv(
      "a,b,label\n"
      "1,,x\n"
      "NA,2,NA\n"  // "NA" is a class name in the label column
      "?,nan,x\n"
      "4,N/A,y\n",
      "m.csv", o);
  ASSERT_EQ(d.x.size(), 8u);
  const std::vector<bool> nan = {false, true, true, false, true, true, false, true};
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(std::isnan(d.x[i]), nan[i]) << i;
  EXPECT_EQ(d.x[0], 1.0F);
  EXPECT_EQ(d.x[3], 2.0F);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"NA", "x", "y"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 0, 1, 2}));
  // Labels and regression targets must be present.
  expect_error([&] { parse_csv("a,label\n1,\n", "m.csv", o); }, "m.csv:2: empty cell in column 2");
  CsvOptions reg = o;
  reg.classification = false;
  expect_error([&] { parse_csv("a,label\n1,NA\n", "r.csv", reg); },
               "r.csv:2: column 2: 'NA' is not a finite number");
  // Infinity is not missing: still refused.
  expect_error([&] { parse_csv("a,label\n-inf,x\n", "m.csv", o); },
               "'-inf' is not a finite number");
}

// A headerless file whose first row has a gap keeps that row (it used to be taken for a header,
// so 5 rows to predict gave 4 predictions that no longer lined up); a UTF-8 byte order mark is
// skipped, and a header after one is matched by name.
TEST(MissingValues, GapsAndByteOrderMarksDoNotMakeAHeader) {
  CsvOptions features;
  features.features_only = true;
  features.allow_missing = true;
  for (const char* first : {"NA,1.5\n", "?,1.5\n", ",1.5\n", "\xEF\xBB\xBFNA,1.5\n"}) {
    const Dataset d = parse_csv(std::string(first) + "2,3\n4,5\n6,7\n8,9\n", "p.csv", features);
    EXPECT_EQ(d.rows, 5) << first;
    EXPECT_TRUE(std::isnan(d.x[0])) << first;
    EXPECT_EQ(d.x[1], 1.5F) << first;
  }
  const Dataset bom = parse_csv(
      "\xEF\xBB\xBF"
      "1,2\n3,4\n",
      "b.csv", features);
  EXPECT_EQ(bom.rows, 2);
  EXPECT_EQ(bom.x[0], 1.0F);
  CsvOptions named;
  named.label_name = "a";
  const Dataset h = parse_csv(
      "\xEF\xBB\xBF"
      "a,b\n0,2\n1,4\n",
      "h.csv", named);
  EXPECT_EQ(h.rows, 2);
  EXPECT_EQ(h.labels, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(h.x, (std::vector<float>{2, 4}));
  // A real header above a gap is still a header.
  const Dataset g = parse_csv("x,y\nNA,1\n2,3\n", "g.csv", features);
  EXPECT_EQ(g.rows, 2);
}

Dataset column(std::vector<float> values) {
  Dataset d;
  d.rows = static_cast<std::int64_t>(values.size());
  d.features = 1;
  d.x = std::move(values);
  return d;
}

TEST(MissingValues, ImputerIsSimpleImputers) {
  const float nan = NAN;
  Dataset d;
  d.rows = 5;
  d.features = 2;
  d.x = {1,   nan,  //
         nan, 10,   //
         4,   30,   //
         2,   nan,  //
         9,   20};
  // Mean of {1, 4, 2, 9} = 4; of {10, 30, 20} = 20.
  const Imputer mean = Imputer::fit(d, Imputer::Strategy::kMean);
  EXPECT_EQ(mean.fill, (std::vector<float>{4, 20}));
  // Median of {1, 2, 4, 9} (even) = (2 + 4) / 2 = 3; of {10, 20, 30} = 20.
  const Imputer median = Imputer::fit(d, Imputer::Strategy::kMedian);
  EXPECT_EQ(median.fill, (std::vector<float>{3, 20}));
  Dataset filled = d;
  EXPECT_EQ(median.apply(filled), 3);
  EXPECT_EQ(filled.x, (std::vector<float>{1, 20, 3, 10, 4, 30, 2, 20, 9, 20}));
  EXPECT_NO_THROW(filled.validate());
  EXPECT_EQ(median.apply(filled), 0);  // nothing left to fill
  // A mean in double: 1e8 + 1 + 1 (float sums would lose the ones) / 3.
  EXPECT_EQ(Imputer::fit(column({1e8F, 1, 1, nan}), Imputer::Strategy::kMean).fill[0],
            static_cast<float>((1e8 + 2) / 3));
  expect_error(
      [&] {
        Imputer::fit(column({nan, nan}), Imputer::Strategy::kMean);
      },
      "feature 0 has no value in the 2 training rows");
  Dataset wide = d;
  wide.features = 1;
  wide.rows = 10;
  expect_error([&] { mean.apply(wide); }, "fit on 2 features, applied to 1");
}

}  // namespace
}  // namespace cutrain::data
