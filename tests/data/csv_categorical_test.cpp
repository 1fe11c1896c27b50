// One-hot CSV columns (CsvOptions::categorical / categories): the expected matrices are written
// out by hand - pandas.get_dummies' layout with the dummies where the column was - and every
// misuse names the file, line, column and category.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cutrain/data/readers.hpp"
#include "support/errors.hpp"

namespace cutrain::data {
namespace {

void expect_error(const std::function<void()>& f, const std::string& what) {
  const std::string e = testing::error_of(f);
  EXPECT_NE(e.find(what), std::string::npos) << e;
}

constexpr const char* kTrain =
    "age,color,size,label\n"
    "30,red,1.5,1\n"
    "40,blue,2.5,0\n"
    "35,red,0.5,1\n"
    "50,green,3,0\n";

TEST(CsvCategorical, OneHotInPlaceWithSortedCategories) {
  CsvOptions o;
  o.label_name = "label";
  o.categorical = {"color"};
  const Dataset d = parse_csv(kTrain, "train.csv", o);
  ASSERT_EQ(d.categorical.size(), 1u);
  EXPECT_EQ(d.categorical[0].name, "color");
  EXPECT_EQ(d.categorical[0].column, 1);  // the second feature column
  EXPECT_EQ(d.categorical[0].categories, (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_EQ(d.features, 5);                              // age, blue, green, red, size
  EXPECT_EQ(d.x, (std::vector<float>{30, 0, 0, 1, 1.5F,  //
                                     40, 1, 0, 0, 2.5F,  //
                                     35, 0, 0, 1, 0.5F,  //
                                     50, 0, 1, 0, 3}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 0, 1, 0}));
  EXPECT_NO_THROW(d.validate());
  const std::vector<std::int64_t> rows = {1};
  EXPECT_EQ(d.subset(rows).categorical[0].categories, d.categorical[0].categories);

  // A test file with the training file's categories: a category it lacks keeps its feature.
  CsvOptions test;
  test.label_name = "label";
  test.categories = d.categorical;
  const Dataset t = parse_csv("age,color,size,label\n20,green,1,1\n", "test.csv", test);
  EXPECT_EQ(t.features, 5);
  EXPECT_EQ(t.x, (std::vector<float>{20, 0, 1, 0, 1}));
  EXPECT_EQ(t.categorical[0].categories, d.categorical[0].categories);
  expect_error([&] { parse_csv("age,color,size,label\n20,purple,1,1\n", "test.csv", test); },
               "test.csv:2: column 2 ('color'): category 'purple' is not one of the 3 known "
               "(blue, green, red)");

  // Data to predict: no label column, the same feature positions, no header needed.
  CsvOptions predict;
  predict.features_only = true;
  predict.categories = d.categorical;
  const Dataset p = parse_csv("33,blue,2\n", "new.csv", predict);
  EXPECT_EQ(p.x, (std::vector<float>{33, 1, 0, 0, 2}));
}

// Numbers as categories are compared as written (a zip code, a rating): "10" sorts before "9",
// and "1.0" is not "1". Several columns, and a categorical column before the label.
TEST(CsvCategorical, NumbersAsWrittenAndSeveralColumns) {
  CsvOptions o;
  o.categorical = {"zip", "grade"};
  const Dataset d = parse_csv("zip,grade,x,label\n9,1,0.5,0\n10,1.0,1.5,1\n9,1,2,1\n", "z.csv", o);
  ASSERT_EQ(d.categorical.size(), 2u);
  EXPECT_EQ(d.categorical[0].categories, (std::vector<std::string>{"10", "9"}));
  EXPECT_EQ(d.categorical[1].categories, (std::vector<std::string>{"1", "1.0"}));
  EXPECT_EQ(d.categorical[1].column, 1);
  EXPECT_EQ(d.features, 5);
  EXPECT_EQ(d.x, (std::vector<float>{0, 1, 1, 0, 0.5F,  //
                                     1, 0, 0, 1, 1.5F,  //
                                     0, 1, 1, 0, 2}));
}

// Header detection: every feature categorical and the label text - no number anywhere - is
// still a header when the first row names the categorical columns; and a lone data row of known
// categories is data (a lone row with text would otherwise be taken for a header).
TEST(CsvCategorical, HeaderDetection) {
  CsvOptions o;
  o.label_name = "label";
  o.categorical = {"color", "shape"};
  const Dataset d =
      parse_csv("color,shape,label\nred,round,yes\nblue,square,no\n", "all_text.csv", o);
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.x, (std::vector<float>{0, 1, 1, 0,  //
                                     1, 0, 0, 1}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"no", "yes"}));
  CsvOptions predict;
  predict.features_only = true;
  predict.categories = d.categorical;
  EXPECT_EQ(parse_csv("blue,round\n", "one_row.csv", predict).rows, 1);
  EXPECT_EQ(parse_csv("color,shape\nblue,round\n", "with_header.csv", predict).rows, 1);
  // A lone row: a header only when nothing in it is a number (or a known category).
  CsvOptions plain;
  EXPECT_EQ(parse_csv("5.1,3.5,setosa\n", "one.csv", plain).rows, 1);
  expect_error([&] { parse_csv("a,b,label\n", "names.csv", plain); },
               "names.csv: no data rows after the header");
  expect_error([&] { parse_csv("red,mauve\n", "new.csv", predict); },
               "new.csv:1: column 2 ('shape'): category 'mauve' is not one of the 2 known");
}

TEST(CsvCategorical, Misuse) {
  CsvOptions o;
  o.label_name = "label";
  o.categorical = {"label"};
  expect_error([&] { parse_csv(kTrain, "t.csv", o); },
               "column 'label' is the label or a target; it cannot also be a categorical feature");
  o.categorical = {"color", "color"};
  expect_error([&] { parse_csv(kTrain, "t.csv", o); }, "categorical column 'color' given twice");
  o.categorical = {"colour"};
  expect_error([&] { parse_csv(kTrain, "t.csv", o); }, "no column named 'colour'");
  // Without a header a column cannot be named.
  o.categorical = {"color"};
  o.label_name.clear();
  expect_error([&] { parse_csv("1,red,0\n2,blue,1\n", "t.csv", o); }, "the file has no header");
  // Text in a feature column not named: the error says how to encode it.
  CsvOptions plain;
  expect_error([&] { parse_csv(kTrain, "t.csv", plain); },
               "t.csv:2: column 2: 'red' is not a finite number (categories? one-hot encode");
  // Known categories that do not fit the file.
  CsvOptions known;
  known.categories = {{"color", 3, {"a", "b"}}};
  expect_error([&] { parse_csv(kTrain, "t.csv", known); },
               "categorical column 'color' is feature column 4 but the file has 3 feature columns");
  known.categories = {{"color", 1, {"a", "a"}}};
  expect_error([&] { parse_csv(kTrain, "t.csv", known); }, "lists category 'a' twice");
  known.categories = {{"color", 1, {}}};
  expect_error([&] { parse_csv(kTrain, "t.csv", known); }, "has 0 categories");
  // An identifier column would add a feature per row.
  std::string ids = "id,x,label\n";
  for (std::size_t i = 0; i <= kMaxCategories; ++i) ids += std::to_string(i) + ",1,0\n";
  CsvOptions id;
  id.categorical = {"id"};
  expect_error([&] { parse_csv(ids, "ids.csv", id); },
               "categorical column 'id' has 65537 distinct values");
}

}  // namespace
}  // namespace cutrain::data
