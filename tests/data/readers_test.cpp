// IDX and CSV readers: round trips (plain and gzip) and every kind of bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "data_fixture.hpp"
#include "support/errors.hpp"

namespace cutrain::data {
namespace {

using testing::gzip_bytes;
using testing::idx_bytes;
using testing::temp_path;
using testing::write_bytes;
using testing::write_text;

TEST(Idx, RoundTripPlainAndGzip) {
  std::vector<std::uint8_t> pixels(3 * 2 * 4);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 10);
  const auto images = idx_bytes({3, 2, 4}, pixels);
  const auto labels = idx_bytes({3}, {7, 0, 9});
  write_bytes(temp_path("img"), images);
  write_bytes(temp_path("lbl"), labels);
  write_bytes(temp_path("img.gz"), gzip_bytes(images));
  write_bytes(temp_path("lbl.gz"), gzip_bytes(labels));
  for (const char* ext : {"", ".gz"}) {
    const Dataset d =
        load_idx(temp_path(std::string("img") + ext), temp_path(std::string("lbl") + ext));
    EXPECT_EQ(d.rows, 3);
    EXPECT_EQ(d.features, 8);
    EXPECT_EQ(d.labels, (std::vector<std::int32_t>{7, 0, 9}));
    ASSERT_EQ(d.x.size(), pixels.size());
    for (std::size_t i = 0; i < pixels.size(); ++i) ASSERT_EQ(d.x[i], pixels[i]);
  }
  // Other element types: big-endian int16 and float32.
  const IdxArray s16 = parse_idx(
      std::vector<std::uint8_t>{0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x00}, "s16");
  EXPECT_EQ(s16.values, (std::vector<float>{-2.0F, 256.0F}));
  const IdxArray f32 =
      parse_idx(std::vector<std::uint8_t>{0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0}, "f32");
  EXPECT_EQ(f32.values, (std::vector<float>{1.5F}));
}

// Every element type, big-endian, with the values that catch sign, width and byte-order slips;
// the expected floats are what C++ conversions of the written values give.
template <class T>
std::vector<std::uint8_t> big_endian(const std::vector<T>& values) {
  std::vector<std::uint8_t> out;
  for (const T v : values) {
    std::uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (std::size_t k = sizeof(T); k-- > 0;) out.push_back(b[k]);  // little-endian host
  }
  return out;
}

TEST(Idx, EveryElementType) {
  auto values = [](std::uint8_t type, const std::vector<std::uint8_t>& data, std::uint32_t n) {
    const IdxArray a = parse_idx(idx_bytes({n}, data, type), "t.idx");
    EXPECT_EQ(a.type, type);
    return a.values;
  };
  using V = std::vector<float>;
  EXPECT_EQ(values(0x08, {0, 1, 128, 255}, 4), (V{0, 1, 128, 255}));
  EXPECT_EQ(values(0x09, {0x80, 0xFF, 0, 0x7F}, 4), (V{-128, -1, 0, 127}));
  EXPECT_EQ(values(0x0B, big_endian<std::int16_t>({-32768, -2, 300, 32767}), 4),
            (V{-32768, -2, 300, 32767}));
  EXPECT_EQ(values(0x0C, big_endian<std::int32_t>({-2147483647, -5, 70000, 16777217}), 4),
            (V{-2147483647.0F, -5, 70000, 16777216}));  // 2^24 + 1 rounds to even
  const float tiny = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(values(0x0D, big_endian<float>({1.5F, -0.0F, 3.4e38F, tiny}), 4),
            (V{1.5F, -0.0F, 3.4e38F, tiny}));
  const double max = std::numeric_limits<float>::max();
  const std::vector<float> d = values(
      0x0E, big_endian<double>({0.1, -2.5, 1e300, -1e300, max + std::ldexp(1.0, 102), 7e-46}), 6);
  EXPECT_EQ(d[0], 0.1F);
  EXPECT_EQ(d[1], -2.5F);
  // Beyond float's range: the infinity of its sign (a defined result, not a UB conversion),
  // within half an ulp of FLT_MAX: FLT_MAX, as rounding gives; below the smallest denormal: 0.
  EXPECT_EQ(d[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(d[3], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(d[4], std::numeric_limits<float>::max());
  EXPECT_EQ(d[5], 0.0F);
  EXPECT_TRUE(std::isnan(
      values(0x0E, big_endian<double>({std::numeric_limits<double>::quiet_NaN()}), 1)[0]));
}

TEST(Idx, RejectsBadFiles) {
  auto parse = [](std::vector<std::uint8_t> b) {
    return testing::error_of([&] { parse_idx(b, "t.idx"); });
  };
  EXPECT_NE(parse({}).find("empty file"), std::string::npos);
  EXPECT_NE(parse({1, 2, 8, 1, 0, 0, 0, 1, 5}).find("not an IDX file"), std::string::npos);
  EXPECT_NE(parse({0, 0, 0x42, 1, 0, 0, 0, 1, 5}).find("unknown IDX element type"),
            std::string::npos);
  EXPECT_NE(parse({0, 0, 8, 3, 0, 0}).find("truncated IDX header"), std::string::npos);
  EXPECT_NE(parse(idx_bytes({10}, {1, 2, 3})).find("t.idx"), std::string::npos);
  // A header that claims billions of items fails on the size check, without allocating.
  EXPECT_NE(parse(idx_bytes({4000000000U, 4000000000U}, {1, 2, 3})).find("claims more items"),
            std::string::npos);
  EXPECT_NE(parse(idx_bytes({2}, {1, 2, 3})).find("trailing"), std::string::npos);
  EXPECT_NE(testing::error_of([] { read_idx(temp_path("does-not-exist")); }).find("does-not-exist"),
            std::string::npos);
  // Corrupt and truncated gzip.
  auto gz = gzip_bytes(idx_bytes({100}, std::vector<std::uint8_t>(100, 3)));
  auto truncated = gz;
  truncated.resize(gz.size() / 2);
  write_bytes(temp_path("trunc.gz"), truncated);
  EXPECT_NE(testing::error_of([] { read_idx(temp_path("trunc.gz")); }).find("gzip"),
            std::string::npos);
  auto corrupt = gz;
  for (std::size_t i = 12; i < corrupt.size() - 8; ++i) corrupt[i] ^= 0x5A;
  write_bytes(temp_path("corrupt.gz"), corrupt);
  EXPECT_NE(testing::error_of([] { read_idx(temp_path("corrupt.gz")); }).find("corrupt gzip"),
            std::string::npos);
  // A decompression bomb: a header declaring 2 images of 4x4 over 16 MiB of zeros is refused as
  // soon as the inflated stream passes the 48 bytes it declares (not after inflating it all).
  std::vector<std::uint8_t> bomb = idx_bytes({2, 4, 4}, std::vector<std::uint8_t>(32, 1));
  bomb.resize(bomb.size() + (std::size_t{16} << 20), 0);
  write_bytes(temp_path("bomb.gz"), gzip_bytes(bomb));
  const std::string e = testing::error_of([] { read_idx(temp_path("bomb.gz")); });
  EXPECT_NE(e.find("decompresses to more than the 48 bytes its header declares"), std::string::npos)
      << e;
  EXPECT_EQ(idx_declared_size(std::vector<std::uint8_t>{0, 0, 8, 2, 0, 0, 0}), std::nullopt);
  EXPECT_EQ(idx_declared_size(idx_bytes({3, 5}, std::vector<std::uint8_t>(15))), 12U + 15U);
  // A directory given as a file is named as one.
  EXPECT_NE(testing::error_of([] {
              read_idx(std::filesystem::temp_directory_path().string());
            }).find("is a directory, not a file"),
            std::string::npos);
  // Images and labels of different counts; labels out of the class range.
  write_bytes(temp_path("img3"), idx_bytes({3, 2}, {1, 2, 3, 4, 5, 6}));
  write_bytes(temp_path("lbl2"), idx_bytes({2}, {1, 2}));
  write_bytes(temp_path("lbl_bad"), idx_bytes({3}, {1, 2, 10}));
  EXPECT_NE(
      testing::error_of([] { load_idx(temp_path("img3"), temp_path("lbl2")); }).find("has 3 items"),
      std::string::npos);
  EXPECT_NE(testing::error_of([] {
              load_idx(temp_path("img3"), temp_path("lbl_bad"));
            }).find("label 10 of item 2 is outside [0, 10)"),
            std::string::npos);
  EXPECT_NE(
      testing::error_of([] { load_fashion_mnist(temp_path("nowhere"), "train"); }).find("tried"),
      std::string::npos);
}

TEST(Csv, ParsesHeaderLabelByNameOrIndex) {
  const std::string text = "a,b,label,c\n1,2,0,3\n4,5.5,2,-6e-1\n\n7,8,1,9\r\n";
  CsvOptions o;
  o.label_name = "label";
  const Dataset d = parse_csv(text, "t.csv", o);
  EXPECT_EQ(d.rows, 3);
  EXPECT_EQ(d.features, 3);
  EXPECT_EQ(d.x, (std::vector<float>{1, 2, 3, 4, 5.5F, -0.6F, 7, 8, 9}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 2, 1}));
  EXPECT_EQ(d.classes, 3);
  CsvOptions by_index;
  by_index.label_index = 0;
  by_index.classification = false;
  const Dataset r = parse_csv("1,2\n3,4\n", "r.csv", by_index);
  EXPECT_EQ(r.targets, (std::vector<float>{1, 3}));
  EXPECT_EQ(r.x, (std::vector<float>{2, 4}));
  write_text(temp_path("t.csv"), text);
  EXPECT_EQ(read_csv(temp_path("t.csv"), o).x, d.x);
}

// Several regression targets by name: each row's targets in the order given, whatever the
// columns' order in the file; every other column a feature, in file order.
// Text labels: classes numbered in sorted order (LabelEncoder's), the names kept; a test file
// numbers them as its training file did; an unknown name, or a missing-value marker, is an error.
TEST(Csv, TextLabelsAreClassNames) {
  CsvOptions o;
  // No header: the first row's text label does not make it one (the features are numbers).
  const Dataset d = parse_csv(
      "5.1,3.5,setosa\n6.2,2.9,versicolor\n7.7,3.0,virginica\n"
      "5.0,3.4,setosa\n",
      "iris.csv", o);
  EXPECT_EQ(d.rows, 4);
  EXPECT_EQ(d.x, (std::vector<float>{5.1F, 3.5F, 6.2F, 2.9F, 7.7F, 3.0F, 5.0F, 3.4F}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(d.classes, 3);
  // With a header, by name; numbers among text labels are names too.
  CsvOptions named;
  named.label_name = "kind";
  const Dataset h = parse_csv("kind,x\nb,1\n10,2\na,3\n", "h.csv", named);
  EXPECT_EQ(h.rows, 3);
  EXPECT_EQ(h.class_names, (std::vector<std::string>{"10", "a", "b"}));
  EXPECT_EQ(h.labels, (std::vector<std::int32_t>{2, 0, 1}));
  // The training file's numbering for the test file, which lacks a class.
  CsvOptions test = o;
  test.class_names = d.class_names;
  const Dataset t = parse_csv("6.0,2.2,virginica\n5.5,2.5,setosa\n", "test.csv", test);
  EXPECT_EQ(t.labels, (std::vector<std::int32_t>{2, 0}));
  EXPECT_EQ(t.classes, 3);
  EXPECT_EQ(t.class_names, d.class_names);
  EXPECT_NE(testing::error_of([&] { parse_csv("1,2,setosa\n1,2,daisy\n", "t2.csv", test); })
                .find("t2.csv:2: label 'daisy' is not one of the 3 classes (setosa, versicolor, "
                      "virginica)"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              parse_csv("1,2,1\n3,4,nan\n", "n.csv", o);
            }).find("n.csv:2: label nan is not a non-negative integer"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] {
              parse_csv("1,2,1\n3,4,1e99\n", "n.csv", o);
            }).find("label inf is not a non-negative integer"),
            std::string::npos);
  // -1 (an SVM's negative class) is named as such; -2 is no convention.
  EXPECT_NE(testing::error_of([&] { parse_csv("1,2,1\n3,4,-1\n", "n.csv", o); })
                .find("n.csv:2: label -1 is not a non-negative integer (labels -1 and 1, an SVM's? "
                      "map them to the classes 0 and 1"),
            std::string::npos);
  EXPECT_EQ(testing::error_of([&] { parse_csv("1,2,1\n3,4,-2\n", "n.csv", o); }).find("SVM"),
            std::string::npos);
  // Subsets and splits keep the names.
  const std::vector<std::int64_t> rows = {2};
  EXPECT_EQ(d.subset(rows).class_names, d.class_names);
}

// Data to predict: every column a feature, with or without a header, the label options ignored.
TEST(Csv, FeaturesOnly) {
  CsvOptions o;
  o.features_only = true;
  o.label_name = "label";  // ignored
  const Dataset d = parse_csv("a,b\n1,2\n3,4.5\n", "new.csv", o);
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.features, 2);
  EXPECT_EQ(d.x, (std::vector<float>{1, 2, 3, 4.5F}));
  EXPECT_TRUE(d.labels.empty() && d.targets.empty() && d.target_width == 0);
  EXPECT_NO_THROW(d.validate());
  const Dataset one = parse_csv("7\n8\n", "one.csv", o);  // a single column is enough
  EXPECT_EQ(one.x, (std::vector<float>{7, 8}));
  EXPECT_NE(testing::error_of([&] { parse_csv("1,2\n3,x\n", "bad.csv", o); }).find("'x'"),
            std::string::npos);
}

// Numbers beyond float's range: underflow reads as the nearest float (a denormal, or 0) - it used
// to be refused as "not a finite number" - and overflow is refused, as an infinity would be.
TEST(Csv, TinyAndHugeNumbers) {
  CsvOptions o;
  o.features_only = true;
  const Dataset d = parse_csv("1e-50,1e-40,-3.5e-39\n", "tiny.csv", o);
  EXPECT_EQ(d.x,
            (std::vector<float>{0.0F, static_cast<float>(1e-40), static_cast<float>(-3.5e-39)}));
  EXPECT_NE(d.x[1], 0.0F);  // a denormal, kept
  EXPECT_NE(testing::error_of([&] {
              parse_csv("1,2\n1e39,2\n", "huge.csv", o);
            }).find("'1e39' is not a finite number"),
            std::string::npos);
}

TEST(Csv, SeveralTargetColumnsByName) {
  CsvOptions o;
  o.classification = false;
  o.target_names = {"y1", "y2"};
  const Dataset d = parse_csv("a,y2,b,y1\n1,2,3,4\n5,6,7,8\n", "m.csv", o);
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.features, 2);
  EXPECT_EQ(d.target_width, 2);
  EXPECT_EQ(d.x, (std::vector<float>{1, 3, 5, 7}));
  EXPECT_EQ(d.targets, (std::vector<float>{4, 2, 8, 6}));
  auto refusal = [](CsvOptions bad, const char* text) {
    return testing::error_of([&] { parse_csv(text, "m.csv", bad); });
  };
  CsvOptions twice = o;
  twice.target_names = {"y1", "y1"};
  EXPECT_NE(refusal(twice, "a,y1\n1,2\n").find("target column 'y1' named twice"),
            std::string::npos);
  CsvOptions all = o;
  all.target_names = {"a", "y1"};
  EXPECT_NE(refusal(all, "a,y1\n1,2\n").find("no features left"), std::string::npos);
  CsvOptions classes = o;
  classes.classification = true;
  EXPECT_NE(refusal(classes, "a,y1,y2\n1,2,3\n").find("several target columns are for regression"),
            std::string::npos);
  EXPECT_NE(
      refusal(o, "a,y1\n1,2\n").find("no column named 'y2' in the header (its columns: a, y1)"),
      std::string::npos);
  // A long name is cut at 40 bytes; a wide header is listed up to its 12th column.
  const std::string long_name(100, 'n');
  EXPECT_NE(refusal(o, (long_name + ",y1\n1,2\n").c_str())
                .find("(its columns: " + long_name.substr(0, 40) + "..., y1)"),
            std::string::npos);
  std::string wide, row;
  for (int c = 0; c < 14; ++c) {
    wide += (c > 0 ? ",c" : "c") + std::to_string(c);
    row += c > 0 ? ",1" : "1";
  }
  EXPECT_NE(refusal(o, (wide + "\n" + row + "\n").c_str())
                .find("(its columns: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, ...)"),
            std::string::npos);
  EXPECT_NE(refusal(o, "1,2,3\n").find("chosen by name but the file has no header"),
            std::string::npos);
}

// Note [CSV quoting]: RFC 4180 cells as R's write.csv (every name and text quoted) and pandas
// (a cell quoted when it holds a comma, a quote or a line break) write them.
TEST(Csv, QuotedCellsFollowRfc4180) {
  CsvOptions o;
  o.label_name = "label";
  o.categorical = {"city"};
  const Dataset d = parse_csv(
      "\"a\",\"city\",\"label\"\r\n"
      "1.5,\"Paris, FR\",\"x\"\r\n"
      " \"2\" ,\"New \"\"York\"\"\",y\r\n"
      "3,\"two\nlines\",\"x\"\r\n",
      "q.csv", o);
  EXPECT_EQ(d.rows, 3);
  ASSERT_EQ(d.categorical.size(), 1U);
  // Sorted bytes: "New \"York\"" < "Paris, FR" < "two\nlines".
  EXPECT_EQ(d.categorical[0].categories,
            (std::vector<std::string>{"New \"York\"", "Paris, FR", "two\nlines"}));
  EXPECT_EQ(d.x, (std::vector<float>{1.5F, 0, 1, 0, 2, 1, 0, 0, 3, 0, 0, 1}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1, 0}));
  // Inside quotes blanks are kept; a quote inside an unquoted cell is a character.
  CsvOptions text;
  text.features_only = true;
  text.categorical = {"s"};
  const Dataset k = parse_csv("s,n\n\" a \",1\n5'11\",2\n", "k.csv", text);
  EXPECT_EQ(k.categorical[0].categories, (std::vector<std::string>{" a ", "5'11\""}));
  auto refusal = [](const char* t) {
    return testing::error_of([&] { parse_csv(t, "bad.csv", {}); });
  };
  // The line where the record starts, counting blank lines and line breaks inside quotes.
  EXPECT_NE(refusal("1,2,0\n\n1,\"2,0\n3,4,1\n").find("bad.csv:3: a quoted cell is never closed"),
            std::string::npos);
  EXPECT_NE(refusal("1,2,0\n1,\"2\"x,0\n").find("bad.csv:2: text after the closing quote of \"2\""),
            std::string::npos);
  EXPECT_NE(refusal("1,\"a\nb\",0\n\n3,4\n").find("bad.csv:4: 2 cells where the first row has 3"),
            std::string::npos);
}

// Note [feature columns by name]: a header's feature columns are recorded by name (a one-hot
// column once, the label left out), for another file's columns to be checked against them.
TEST(Csv, RecordsTheFeatureColumnNames) {
  CsvOptions o;
  o.label_name = "label";
  o.categorical = {"city"};
  const Dataset d = parse_csv("x,label,\"city\",y\n1,0,a,2\n3,1,b,4\n", "n.csv", o);
  EXPECT_EQ(d.feature_columns, (std::vector<std::string>{"x", "city", "y"}));
  EXPECT_EQ(d.features, 4);  // x, city's two categories, y
  const std::vector<std::int64_t> second = {1};
  EXPECT_EQ(d.subset(second).feature_columns, d.feature_columns);
  EXPECT_TRUE(parse_csv("1,2,0\n3,4,1\n", "h.csv", {}).feature_columns.empty());  // no header
}

// Note [CSV text is UTF-8]: names travel into JSON, which holds UTF-8 alone; a file in another
// encoding is refused at its first byte that is not UTF-8, naming the line and the cell, and
// UTF-8 text of every length passes as written.
TEST(Csv, TextIsUtf8) {
  CsvOptions o;
  o.label_name = "label";
  const Dataset d = parse_csv(
      "x,label\n1,caf\xC3\xA9\n2,\xE6\x97\xA5\xE6\x9C\xAC\n3,\xF0\x9F\x91\x9F\n", "u.csv", o);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
                                                     "\xF0\x9F\x91\x9F"}));
  auto refusal = [&](const std::string& t) {
    return testing::error_of([&] { parse_csv(t, "l.csv", o); });
  };
  EXPECT_NE(refusal("x,label\n1,tea\n\n2,caf\xE9\n")
                .find("l.csv:4: byte 0xE9 in 'caf\\xE9' is not UTF-8: the file is in another "
                      "encoding"),
            std::string::npos);
  EXPECT_NE(refusal("x,label\n1,\xC0\xAF\n").find("byte 0xC0"), std::string::npos);  // overlong
  EXPECT_NE(refusal("x,label\n1,\xED\xA0\x80\n").find("byte 0xED"),
            std::string::npos);  // surrogate
  EXPECT_NE(refusal("x,label\n1,\xF4\x90\x80\x80\n").find("byte 0xF4"),
            std::string::npos);                                                     // past U+10FFFF
  EXPECT_NE(refusal("x,label\n1,a\xE6\x97").find("byte 0xE6"), std::string::npos);  // cut short
  EXPECT_NE(
      refusal(std::string("\xFF\xFEx\0,\0l\0\n\0", 10)).find("l.csv: the file is UTF-16 text"),
      std::string::npos);
}

// Classic Mac OS line ends ('\r' alone: Excel for Mac's "CSV (Macintosh)") read as lines; they
// were one line of every cell.
TEST(Csv, CarriageReturnLineEnds) {
  CsvOptions o;
  o.label_name = "label";
  const Dataset d = parse_csv("a,label\r1.5,x\r2,y\r\r3,x\r", "mac.csv", o);
  EXPECT_EQ(d.rows, 3);
  EXPECT_EQ(d.x, (std::vector<float>{1.5F, 2, 3}));
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1, 0}));
  EXPECT_NE(testing::error_of([] {
              parse_csv("a,label\r1,x\r\r2\r", "m.csv", {});
            }).find("m.csv:4: 1 cells where the first row has 2"),
            std::string::npos);
}

// An error names the file's line (blank lines count), and shows a cell's control bytes as \xNN:
// a NUL used to end the message.
TEST(Csv, ErrorsNameTheLineAndShowControlBytes) {
  auto refusal = [](const std::string& t, const CsvOptions& o = {}) {
    return testing::error_of([&] { parse_csv(t, "bad.csv", o); });
  };
  EXPECT_NE(refusal("1,2,0\n\n\n3,x,1\n").find("bad.csv:4: column 2: 'x'"), std::string::npos);
  EXPECT_NE(refusal("1,2,0\n\n3,4,0.5\n").find("bad.csv:3: label 0.5"), std::string::npos);
  EXPECT_NE(refusal(std::string("1,2,0\n3,\0012,1\n", 14)).find("column 2: '\\x012'"),
            std::string::npos);
  EXPECT_NE(refusal(std::string("1,2,0\n3,\0002,1\n", 14)).find("column 2: '\\x002' is not"),
            std::string::npos);
  // A name the header holds twice chooses no column.
  CsvOptions named;
  named.label_name = "label";
  EXPECT_NE(refusal("a,label,label\n1,2,0\n", named)
                .find("label column 'label' names columns 2 and 3; rename one"),
            std::string::npos);
}

TEST(Csv, RejectsBadFiles) {
  auto parse = [](const std::string& t, CsvOptions o = {}) {
    return testing::error_of([&] { parse_csv(t, "bad.csv", o); });
  };
  EXPECT_NE(parse("").find("empty CSV"), std::string::npos);
  EXPECT_NE(parse("1,2,0\n3,4\n").find("bad.csv:2: 2 cells"), std::string::npos);
  EXPECT_NE(parse("1,2,0\n1,,0\n").find("bad.csv:2: column 2: missing value ('')"),
            std::string::npos);
  EXPECT_NE(parse("1,2,0\n1,2,\n").find("bad.csv:2: empty cell in column 3"), std::string::npos);
  EXPECT_NE(parse("1,2,0\n3,x,1\n").find("'x' is not a finite number"), std::string::npos);
  EXPECT_NE(parse("1,2,0\n3,nan,1\n").find("missing value ('nan'); fill it in, or impute"),
            std::string::npos);
  EXPECT_NE(parse("1,2,0\n3,inf,1\n").find("'inf' is not a finite number"), std::string::npos);
  EXPECT_NE(parse("1,2,0.5\n").find("not a non-negative integer"), std::string::npos);
  CsvOptions three;
  three.classes = 3;
  EXPECT_NE(parse("1,2,5\n", three).find("outside [0, 3)"), std::string::npos);
  CsvOptions named;
  named.label_name = "y";
  EXPECT_NE(parse("a,b\n1,2\n", named).find("no column named 'y'"), std::string::npos);
  EXPECT_NE(parse("a,b\n").find("no data rows"), std::string::npos);
  EXPECT_NE(parse("a;b;label\n1,5;2;0\n").find("found 1; its first line is separated by ';'"),
            std::string::npos);
  EXPECT_NE(testing::error_of([] { read_csv(temp_path("missing.csv")); }).find("missing.csv"),
            std::string::npos);
}

// Note [inflation ratio]: CSV declares no size, so a gzipped CSV may inflate to 200x its
// compressed bytes (at least 64 MiB) - a genuine gzipped CSV reads as the plain one does, a bomb
// is refused once it passes that bound, not after 4 GiB.
TEST(Csv, GzipReadsAndBombsStopAtTheInflationRatio) {
  const std::string text = "a,b,label\n1,2,0\n3,4,1\n";
  write_bytes(temp_path("small.csv.gz"), gzip_bytes({text.begin(), text.end()}));
  CsvOptions o;
  o.label_name = "label";
  const Dataset d = read_csv(temp_path("small.csv.gz"), o);
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.features, 2);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1}));
  // 80 MiB of "0,0\n" compresses ~1000x: its bound is the 64 MiB floor.
  std::vector<std::uint8_t> bomb;
  bomb.reserve(std::size_t{80} << 20);
  while (bomb.size() < (std::size_t{80} << 20)) bomb.insert(bomb.end(), {'0', ',', '0', '\n'});
  const std::vector<std::uint8_t> gz = gzip_bytes(bomb);
  ASSERT_LT(gz.size() * 200, std::size_t{64} << 20);
  write_bytes(temp_path("bomb.csv.gz"), gz);
  const std::string e = testing::error_of([] { read_csv(temp_path("bomb.csv.gz")); });
  EXPECT_NE(e.find("bomb.csv.gz: decompresses to more than 67108864 bytes, over 200 times its"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("decompress it first (gunzip)"), std::string::npos) << e;
  // The same bytes uncompressed are data, read as they are.
  const std::vector<std::uint8_t> head(bomb.begin(), bomb.begin() + 4 * 1000);
  write_bytes(temp_path("zeros.csv"), head);
  CsvOptions regression;
  regression.classification = false;
  EXPECT_EQ(read_csv(temp_path("zeros.csv"), regression).rows, 1000);
}

// A format read only as written refuses a gzip stream instead of inflating it.
TEST(ReadFile, GzipRefusedWhereTheFormatIsNeverCompressed) {
  write_bytes(temp_path("x.gz"), gzip_bytes({1, 2, 3}));
  EXPECT_EQ(read_file(temp_path("x.gz")), (std::vector<std::uint8_t>{1, 2, 3}));
  const std::string e = testing::error_of(
      [] { read_file(temp_path("x.gz"), std::size_t{1} << 32, {}, Gzip::kRefuse); });
  EXPECT_NE(e.find("x.gz' is gzip-compressed, and this format is read only as written"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace cutrain::data
