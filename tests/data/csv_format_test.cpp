// How a CSV file is written. Note [CSV separators]: CsvOptions::separator and CsvOptions::decimal;
// each case reads a file written with another separator against the same data written with
// commas - the reading the comma file gets, which Csv.* checks against its numbers - and the
// numbers themselves. Note [numbered header]: pandas' "0,1,2,..." header, and CsvOptions::header.
// Note [index columns]: the row numbers pandas and R write by default. Note [id column]: the
// rows' identifiers, kept as written beside the features.
#include <gtest/gtest.h>

#include <cmath>
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

CsvOptions with(char separator, char decimal = '.') {
  CsvOptions o;
  o.label_name = "label";
  o.separator = separator;
  o.decimal = decimal;
  return o;
}

void expect_same(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.feature_columns, b.feature_columns);
}

TEST(CsvSeparators, ExcelsSemicolonsWithDecimalCommas) {
  // What Excel writes where the decimal mark is a comma, quoting a name that holds a ';'.
  const Dataset d = parse_csv(
      "width;\"height; cm\";label\n"
      "1,5;-2,25e1;cat\n"
      "3;0,125;\"dog; big\"\n",
      "excel.csv", with(';', ','));
  EXPECT_EQ(d.x, (std::vector<float>{1.5F, -22.5F, 3.0F, 0.125F}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog; big"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(d.feature_columns, (std::vector<std::string>{"width", "height; cm"}));
  expect_same(d, parse_csv("width,\"height; cm\",label\n1.5,-2.25e1,cat\n3,0.125,\"dog; big\"\n",
                           "comma.csv", with(',')));
  // Semicolons with decimal points read the same numbers.
  expect_same(d, parse_csv("width;\"height; cm\";label\n1.5;-2.25e1;cat\n3;0.125;\"dog; big\"\n",
                           "points.csv", with(';')));
}

TEST(CsvSeparators, TabsSeparateAndAreNotTrimmed) {
  // A TSV's empty cell (between two tabs) stays a cell: tabs are not blanks to trim there. Spaces
  // still are, and a quoted cell may follow a tab.
  CsvOptions o = with('\t');
  o.allow_missing = true;
  const Dataset d = parse_csv("a\tb\tlabel\n1\t\t0\n 2 \t\"3\"\t1\n", "t.tsv", o);
  ASSERT_EQ(d.x.size(), 4U);
  EXPECT_EQ(d.x[0], 1.0F);
  EXPECT_TRUE(std::isnan(d.x[1]));
  EXPECT_EQ(d.x[2], 2.0F);
  EXPECT_EQ(d.x[3], 3.0F);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1}));
  // Without missing values allowed, the empty cell is named as the comma file's would be.
  expect_error([] { parse_csv("a\tb\tlabel\n1\t\t0\n2\t3\t1\n", "t.tsv", with('\t')); },
               "t.tsv:2: column 2: missing value ('')");
}

TEST(CsvSeparators, PipesAndCommasInsideCells) {
  // With '|' the comma is text: a category "Paris, FR" needs no quotes.
  CsvOptions o = with('|');
  o.categorical = {"city"};
  const Dataset d = parse_csv("x|city|label\n1|Paris, FR|0\n2|Lyon|1\n", "p.csv", o);
  EXPECT_EQ(d.features, 3);
  ASSERT_EQ(d.categorical.size(), 1U);
  EXPECT_EQ(d.categorical[0].categories, (std::vector<std::string>{"Lyon", "Paris, FR"}));
  EXPECT_EQ(d.x, (std::vector<float>{1, 0, 1, 2, 1, 0}));
}

TEST(CsvSeparators, ADecimalCommaRefusesAPoint) {
  // "1.234" in a decimal-comma file is a thousands separator's 1234 or a point's 1.234: neither
  // is taken.
  expect_error([] { parse_csv("a;b;label\n1,5;1.234;0\n2;3;1\n", "d.csv", with(';', ',')); },
               "d.csv:2: column 2: '1.234' is not a finite number (the decimal separator is ','");
  // The converse: a decimal comma in a file read with points names the option.
  expect_error([] { parse_csv("a;b;label\n1,5;2;0\n2;3;1\n", "d.csv", with(';')); },
               "'1,5' is not a finite number (a decimal comma? CsvOptions::decimal = ','");
}

TEST(CsvSeparators, NamesTheSeparatorAFileUses) {
  auto refusal = [](const std::string& text, char separator) {
    return testing::error_of([&] { parse_csv(text, "s.csv", with(separator)); });
  };
  EXPECT_NE(refusal("a;b;label\n1;2;0\n", ',')
                .find("found 1; its first line is separated by ';': give that separator "
                      "(CsvOptions::separator, cutrain-train --csv-separator ';')"),
            std::string::npos);
  EXPECT_NE(refusal("a\tb\tlabel\n1\t2\t0\n", ',').find("separated by tabs"), std::string::npos);
  EXPECT_NE(refusal("a,b,label\n1,2,0\n", ';')
                .find("separated by ',': give that separator "
                      "(CsvOptions::separator, cutrain-train "
                      "--csv-separator ,)"),
            std::string::npos);
}

TEST(CsvSeparators, RefusesSeparatorsItDoesNotRead) {
  expect_error([] { parse_csv("a b label\n", "s.csv", with(' ')); },
               "s.csv: separator ' ' is not one of ',', ';', tab and '|'");
  expect_error([] { parse_csv("a\"b\n", "s.csv", with('"')); }, "is not one of");
  expect_error([] { parse_csv("a,b\n", "s.csv", with(',', ';')); },
               "decimal separator ';' is not '.' or ','");
  expect_error([] { parse_csv("a,b\n", "s.csv", with(',', ',')); },
               "the decimal separator ',' needs another cell separator");
}

// What pd.DataFrame(array).to_csv(index=False) writes: the columns named 0, 1, 2, ... Read as
// data, the header was one more sample whose label (4 here) made a class of its own.
TEST(CsvHeader, PandasNumberedColumnsAreAHeader) {
  const Dataset d = parse_csv("0,1,2,3,4\n0.5,1,2,3,1\n-1,0,0,0,0\n", "p.csv", {});
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.classes, 2);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 0}));
  EXPECT_EQ(d.x, (std::vector<float>{0.5F, 1, 2, 3, -1, 0, 0, 0}));
  EXPECT_EQ(d.feature_columns, (std::vector<std::string>{"0", "1", "2", "3"}));
  // Three columns suffice; a features-only file (new rows to predict) is read alike.
  CsvOptions features;
  features.features_only = true;
  EXPECT_EQ(parse_csv("0,1,2\n7,8,9\n", "f.csv", features).rows, 1);
  // Not a numbering from 0 in order, or written as floats: data, as before.
  for (const char* text :
       {"0,2,1\n5,6,7\n", "1,2,3\n5,6,7\n", "0.0,1,2\n5,6,7\n", "0,1,2,4\n5,6,7,1\n"}) {
    const Dataset data = parse_csv(text, "d.csv", {});
    EXPECT_EQ(data.rows, 2) << text;
    EXPECT_TRUE(data.feature_columns.empty()) << text;
  }
  // Two cells, "0,1", are as often a row of a two-column file: data.
  EXPECT_EQ(parse_csv("0,1\n1,0\n", "two.csv", {}).rows, 2);
}

TEST(CsvHeader, TheOptionOverridesTheDetection) {
  CsvOptions no;
  no.header = CsvOptions::Header::kNo;
  const Dataset all = parse_csv("0,1,2\n3,4,1\n", "n.csv", no);
  EXPECT_EQ(all.rows, 2);
  EXPECT_EQ(all.x, (std::vector<float>{0, 1, 3, 4}));
  EXPECT_EQ(all.classes, 3);
  CsvOptions yes;
  yes.header = CsvOptions::Header::kYes;
  const Dataset named = parse_csv("0,1\n3,1\n5,0\n", "y.csv", yes);
  EXPECT_EQ(named.rows, 2);
  EXPECT_EQ(named.feature_columns, (std::vector<std::string>{"0"}));
}

// Note [a label column left a feature]: Kaggle's MNIST CSVs put "label" first; with the label
// column not chosen, the last pixel was the label and the true label a feature.
TEST(CsvHeader, AFeatureNamedLikeALabelAsksWhichColumnIsMeant) {
  CsvOptions unchosen;
  unchosen.label_chosen = false;
  const std::string mnist = "label,pixel0,pixel1\n3,0,0\n7,0,255\n";
  expect_error([&] { parse_csv(mnist, "m.csv", unchosen); },
               "m.csv: its column 'label' (column 1) would be a feature, the label being the last "
               "column ('pixel1') as none was chosen: name the label column");
  for (const char* header : {"Class,a,b\n", "Y,a,b\n", "target,a,b\n", "a,LABELS,b\n"})
    expect_error([&] { parse_csv(std::string(header) + "1,2,0\n3,4,1\n", "h.csv", unchosen); },
                 "would be a feature");
  // Chosen - by default for a library caller - it is read as asked.
  EXPECT_EQ(parse_csv(mnist, "m.csv", {}).classes, 256);
  CsvOptions by_name = unchosen;
  by_name.label_name = "label";
  EXPECT_EQ(parse_csv(mnist, "m.csv", by_name).labels, (std::vector<std::int32_t>{3, 7}));
  // The last column named "label" itself, no header, or other names: nothing to ask.
  EXPECT_EQ(parse_csv("a,b,label\n1,2,0\n3,4,1\n", "l.csv", unchosen).rows, 2);
  EXPECT_EQ(parse_csv("3,0,0\n7,0,1\n", "n.csv", unchosen).rows, 2);
  EXPECT_EQ(parse_csv("labelled,b,c\n1,2,0\n3,4,1\n", "o.csv", unchosen).rows, 2);
}

// What df.to_csv("f.csv") writes without index=False, R's write.csv with its row names, and a
// file pandas read and wrote again: a first column numbering the rows, which trained the model
// on the files' order.
TEST(CsvIndexColumn, RowNumbersWithoutANameAreRefused) {
  expect_error([] { parse_csv(",a,label\n0,0.5,1\n1,-2,0\n2,3,1\n", "pandas.csv", {}); },
               "pandas.csv: column 1 (no name) numbers the rows 0, 1, 2, ...: the index pandas' "
               "DataFrame.to_csv writes unless index=False (R's write.csv: row.names = FALSE)");
  expect_error([] { parse_csv("\"\",\"a\",\"label\"\n\"1\",0.5,1\n\"2\",-2,0\n", "r.csv", {}); },
               "r.csv: column 1 (no name) numbers the rows 1, 2, 3, ...");
  expect_error([] { parse_csv("a,Unnamed: 0,label\n7,0,1\n8,1,0\n", "again.csv", {}); },
               "column 2 ('Unnamed: 0') numbers the rows 0, 1, 2, ...: the index pandas' "
               "DataFrame.to_csv writes unless index=False (R's write.csv: row.names = FALSE). A "
               "row number is no feature: write the file without it, or leave it out "
               "(CsvOptions::drop_columns; cutrain-train --drop-columns 'Unnamed: 0')");
  CsvOptions dropped;  // ... which reads the rest
  dropped.drop_columns = {"Unnamed: 0"};
  const Dataset rest = parse_csv("a,Unnamed: 0,label\n7,0,1\n8,1,0\n", "again.csv", dropped);
  EXPECT_EQ(rest.x, (std::vector<float>{7, 8}));
  EXPECT_EQ(rest.feature_columns, (std::vector<std::string>{"a"}));
  // An unnamed frame's to_csv() with its index: the numbered header after the index's empty cell.
  expect_error([] { parse_csv(",0,1,2\n0,0.5,2,1\n1,-2,3,0\n", "both.csv", {}); },
               "both.csv: column 1 (no name) numbers the rows 0, 1, 2, ...");
  // A prediction file (features only) alike.
  CsvOptions features;
  features.features_only = true;
  expect_error([&] { parse_csv(",a\n0,1\n1,2\n", "new.csv", features); }, "(no name) numbers");
  // The command names the separator and the other fields (cut's own delimiter is the tab).
  CsvOptions tabs;
  tabs.separator = '\t';
  expect_error([&] { parse_csv("a\tb\t\tlabel\n1\t2\t0\t1\n3\t4\t1\t0\n", "t.tsv", tabs); },
               "column 3 (no name) numbers the rows 0, 1, 2, ...");
  expect_error([&] { parse_csv("a\tb\t\tlabel\n1\t2\t0\t1\n3\t4\t1\t0\n", "t.tsv", tabs); },
               "(cut -f1-2,4- FILE for a file without quoted separators)");
  CsvOptions semicolons;
  semicolons.separator = ';';
  expect_error([&] { parse_csv("a;label;\n1;1;1\n3;0;2\n", "s.csv", semicolons); },
               "(cut -d';' -f1-2 FILE");
}

TEST(CsvIndexColumn, OtherColumnsStayFeatures) {
  // Unnamed but not row numbers; row numbers under a name of their own (the user's choice); a
  // single data row (nothing to number): all read as before.
  EXPECT_EQ(parse_csv(",a,label\n3,0.5,1\n1,-2,0\n", "u.csv", {}).features, 2);
  EXPECT_EQ(parse_csv("id,a,label\n0,0.5,1\n1,-2,0\n", "id.csv", {}).features, 2);
  EXPECT_EQ(parse_csv(",a,label\n0,0.5,1\n", "one.csv", {}).features, 2);
  EXPECT_EQ(parse_csv(",a,label\n0,0.5,1\n2,-2,0\n", "gap.csv", {}).features, 2);
}

// CsvOptions::drop_columns: identifiers and free text left out - of the features, their names
// and the one-hot columns' feature positions, so that a file to predict without them reads alike.
TEST(CsvDropColumns, LeavesColumnsOutOfEveryFile) {
  CsvOptions o;
  o.label_name = "Survived";
  o.drop_columns = {"PassengerId", "Name"};
  o.categorical = {"Sex"};
  const Dataset d = parse_csv(
      "PassengerId,Name,Sex,Age,Survived\n"
      "1,\"Braund, Owen\",male,22,0\n"
      "2,\"Cumings, Florence\",female,38,1\n",
      "titanic.csv", o);
  EXPECT_EQ(d.feature_columns, (std::vector<std::string>{"Sex", "Age"}));
  EXPECT_EQ(d.x, (std::vector<float>{0, 1, 22, 1, 0, 38}));  // female, male one-hot; Age
  ASSERT_EQ(d.categorical.size(), 1U);
  EXPECT_EQ(d.categorical[0].column, 0);  // Sex is the first feature column
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1}));
  // New rows to predict, with or without the dropped columns: the same features.
  CsvOptions predict;
  predict.features_only = true;
  predict.drop_columns = o.drop_columns;
  predict.categories = d.categorical;
  const Dataset with = parse_csv("PassengerId,Name,Sex,Age\n9,x,female,30\n", "p.csv", predict);
  const Dataset without = parse_csv("Sex,Age\nfemale,30\n", "q.csv", predict);
  EXPECT_EQ(with.x, (std::vector<float>{1, 0, 30}));
  EXPECT_EQ(without.x, with.x);
  EXPECT_EQ(without.feature_columns, with.feature_columns);
}

TEST(CsvDropColumns, RefusesWhatCannotBeDropped) {
  auto refusal = [](std::vector<std::string> drop, const std::string& text,
                    std::vector<std::string> categorical = {}) {
    CsvOptions o;
    o.label_name = "label";
    o.drop_columns = std::move(drop);
    o.categorical = std::move(categorical);
    return testing::error_of([&] { parse_csv(text, "d.csv", o); });
  };
  const std::string text = "id,a,label\n1,2,0\n2,3,1\n";
  EXPECT_NE(refusal({"ID"}, text).find("no column named 'ID' in the header"), std::string::npos);
  EXPECT_NE(refusal({"label"}, text)
                .find("column 'label' is the label or a target; it cannot "
                      "also be dropped"),
            std::string::npos);
  EXPECT_NE(refusal({"id", "id"}, text).find("column 'id' is to be dropped twice"),
            std::string::npos);
  EXPECT_NE(refusal({"id"}, text, {"id"})
                .find("column 'id' is dropped; it cannot also be a "
                      "categorical feature"),
            std::string::npos);
  CsvOptions headerless;
  headerless.drop_columns = {"id"};
  expect_error([&] { parse_csv("1,2,0\n2,3,1\n", "n.csv", headerless); },
               "n.csv: columns to drop are named, but the file has no header");
}

TEST(CsvIdColumn, KeepsEachRowsIdAsWrittenOutsideTheFeatures) {
  CsvOptions o;
  o.label_name = "Survived";
  o.id_column = "PassengerId";
  o.drop_columns = {"Name"};
  // Ids as text, quoted with the separator in them, and numbers kept as written ("007").
  const Dataset d = parse_csv(
      "Name,PassengerId,Age,Fare,Survived\n"
      "a,\"X-1, b\",22,7.25,0\n"
      "b,007,38,71.5,1\n"
      "c,12e3,26,7.9,1\n",
      "titanic.csv", o);
  EXPECT_EQ(d.row_ids, (std::vector<std::string>{"X-1, b", "007", "12e3"}));
  EXPECT_EQ(d.feature_columns, (std::vector<std::string>{"Age", "Fare"}));
  EXPECT_EQ(d.x, (std::vector<float>{22, 7.25F, 38, 71.5F, 26, 7.9F}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1, 1}));
  // A subset (a split, a fold) keeps each id with its row.
  const std::vector<std::int64_t> order = {2, 0};
  const Dataset part = d.subset(order);
  EXPECT_EQ(part.row_ids, (std::vector<std::string>{"12e3", "X-1, b"}));
  EXPECT_EQ(part.x, (std::vector<float>{26, 7.9F, 22, 7.25F}));
  // New rows: with the id column, without it, without a header - the same features; ids where
  // the file has them, for the caller to require or not.
  CsvOptions predict;
  predict.features_only = true;
  predict.id_column = "PassengerId";
  const Dataset with = parse_csv("PassengerId,Age,Fare\n892,34.5,7.83\n", "p.csv", predict);
  const Dataset without = parse_csv("Age,Fare\n34.5,7.83\n", "q.csv", predict);
  const Dataset bare = parse_csv("34.5,7.83\n", "r.csv", predict);
  EXPECT_EQ(with.row_ids, (std::vector<std::string>{"892"}));
  EXPECT_TRUE(without.row_ids.empty());
  EXPECT_TRUE(bare.row_ids.empty());
  EXPECT_EQ(with.x, (std::vector<float>{34.5F, 7.83F}));
  EXPECT_EQ(without.x, with.x);
  EXPECT_EQ(bare.x, with.x);
  EXPECT_EQ(without.feature_columns, with.feature_columns);
  // Dataset::validate holds the ids to the rows.
  Dataset short_ids = d;
  short_ids.row_ids.pop_back();
  expect_error([&] { short_ids.validate("train"); }, "train: 2 row ids for 3 rows");
}

TEST(CsvIdColumn, RefusesWhatCannotBeTheIdColumn) {
  auto refusal = [](const std::string& id, const std::string& text,
                    std::vector<std::string> drop = {}, std::vector<std::string> categorical = {}) {
    CsvOptions o;
    o.label_name = "label";
    o.id_column = id;
    o.drop_columns = std::move(drop);
    o.categorical = std::move(categorical);
    return testing::error_of([&] { parse_csv(text, "d.csv", o); });
  };
  const std::string text = "id,a,label\n1,2,0\n2,3,1\n";
  EXPECT_NE(refusal("ID", text).find("no column named 'ID' in the header"), std::string::npos);
  EXPECT_NE(refusal("label", text)
                .find("column 'label' is the label or a target; it cannot "
                      "also be the id column"),
            std::string::npos);
  EXPECT_NE(refusal("id", text, {"id"}).find("column 'id' is dropped; it cannot also be the id"),
            std::string::npos);
  EXPECT_NE(refusal("id", text, {}, {"id"})
                .find("column 'id' is the id column; it cannot also be a categorical feature"),
            std::string::npos);
  EXPECT_NE(refusal("id", "id,id,label\n1,2,0\n2,3,1\n").find("names columns 1 and 2"),
            std::string::npos);
  // A labelled file must have it: a header, and the column in it.
  CsvOptions headerless;
  headerless.id_column = "id";
  expect_error([&] { parse_csv("1,2,0\n2,3,1\n", "n.csv", headerless); },
               "n.csv: the id column 'id' is named, but the file has no header");
}

}  // namespace
}  // namespace cutrain::data
