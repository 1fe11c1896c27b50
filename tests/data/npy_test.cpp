// NumPy .npy files: fixtures written by numpy itself (tests/data/make_npy_fixtures.py) against
// the formulas they were made from, and malformed headers built here byte by byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "cutrain/data/npy.hpp"
#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "data_fixture.hpp"

namespace cutrain::data {
namespace {

std::string fixture(const std::string& name) {
  return std::string(CUTRAIN_TEST_DIR) + "/data/npy/" + name;
}

// make_npy_fixtures.py's x: arange(24) * 0.5 - 3, in C order.
std::vector<float> expected_x() {
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[static_cast<std::size_t>(i)] = static_cast<float>(i) * 0.5F - 3;
  return x;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Npy, EveryDtypeOrderAndVersionReadsNumpysValues) {
  const std::vector<float> x = expected_x();
  // (4, 2, 3) float32: 4 samples of 6 features; plain and gzipped.
  for (const char* name : {"x_f4_c.npy", "x_f4_c.npy.gz"}) {
    const Dataset d = load_npy(fixture(name), fixture("y_i8.npy"));
    EXPECT_EQ(d.rows, 4) << name;
    EXPECT_EQ(d.features, 6) << name;
    EXPECT_EQ(d.x, x) << name;
    EXPECT_EQ(d.labels, (std::vector<std::int32_t>{2, 0, 1, 2}));
    EXPECT_EQ(d.classes, 3);
  }
  // Fortran-ordered float64 and big-endian float16 come back in C order.
  EXPECT_EQ(load_npy(fixture("x_f8_fortran.npy"), fixture("y_i8.npy")).x, x);
  EXPECT_EQ(load_npy(fixture("x_f2_big.npy"), fixture("y_i8.npy")).x, x);
  // int16 in format version 2.0: x * 2 (integers -6 .. 17).
  const Dataset i2 = load_npy(fixture("x_i2_v2.npy"), fixture("y_i8.npy"));
  for (std::size_t i = 0; i < 24; ++i) EXPECT_EQ(i2.x[i], 2 * x[i]) << i;
  const Dataset u1 = load_npy(fixture("x_u1.npy"), fixture("y_u1_column.npy"));
  for (std::size_t i = 0; i < 24; ++i) EXPECT_EQ(u1.x[i], static_cast<float>(i));
  EXPECT_EQ(u1.labels, (std::vector<std::int32_t>{1, 1, 0, 3}));
  EXPECT_EQ(u1.classes, 4);
  // One feature per sample; labels from integral floats and from bools.
  const Dataset one = load_npy(fixture("x_1d.npy"), fixture("y_f4_integral.npy"));
  EXPECT_EQ(one.features, 1);
  EXPECT_EQ(one.x, (std::vector<float>{1.5F, -2.0F, 3.25F, 0.0F}));
  EXPECT_EQ(one.labels, (std::vector<std::int32_t>{0, 1, 1, 0}));
  EXPECT_EQ(load_npy(fixture("x_1d.npy"), fixture("y_bool.npy")).labels,
            (std::vector<std::int32_t>{1, 0, 0, 1}));
}

TEST(Npy, RegressionTargetsAndFeaturesOnly) {
  const Dataset d = load_npy(fixture("x_f4_c.npy"), fixture("y_reg.npy"), /*regression=*/true);
  EXPECT_EQ(d.target_width, 2);
  EXPECT_EQ(d.targets, (std::vector<float>{0.5F, -1.0F, 1.5F, 2.0F, 2.5F, -3.0F, 3.5F, 4.0F}));
  EXPECT_TRUE(d.labels.empty());
  const Dataset one = load_npy(fixture("x_1d.npy"), fixture("y_i8.npy"), /*regression=*/true);
  EXPECT_EQ(one.target_width, 1);
  EXPECT_EQ(one.targets, (std::vector<float>{2, 0, 1, 2}));
  const Dataset f = load_npy_features(fixture("x_f8_fortran.npy"));
  EXPECT_EQ(f.rows, 4);
  EXPECT_EQ(f.x, expected_x());
  EXPECT_TRUE(f.labels.empty());
}

TEST(Npy, BadFilesAreRefusedWithTheReason) {
  auto expect_error = [](const std::string& x, const std::string& y, const std::string& part,
                         bool regression = false) {
    const std::string e = error_of([&] { load_npy(fixture(x), fixture(y), regression); });
    EXPECT_NE(e.find(part), std::string::npos) << x << " / " << y << ": " << e;
  };
  expect_error("x_f4_c.npy", "y_negative.npy", "label -1 of sample 1 is not a class number");
  // -1 is the -1/+1 convention's negative class: the error says how to map it.
  expect_error("x_f4_c.npy", "y_negative.npy",
               "(labels -1 and 1, an SVM's? map them to the classes 0 and 1: (y + 1) / 2");
  expect_error("x_f4_c.npy", "y_fraction.npy", "label 1.5 of sample 1");
  expect_error("x_f4_c.npy", "y_three.npy", "y_three.npy has 3 rows but");
  expect_error("x_f4_c.npy", "y_reg.npy", "class labels must be (N) or (N, 1)");
  expect_error("x_nan.npy", "y_i8.npy", "feature 1 of sample 0 is nan");
  expect_error("strings.npy", "y_i8.npy", "dtype '<U2' is not numeric");
  expect_error("structured.npy", "y_i8.npy", "a structured dtype");
  expect_error("x_f4_c.npy", "missing.npy", "missing.npy");
}

// A version 1.0 file around a header text (padded as numpy pads it) and data bytes.
std::vector<std::uint8_t> npy(std::string header, std::size_t data_bytes) {
  header += '\n';
  // Sized once and filled in place (push_back after a braced list set off g++ 12's
  // -Wstringop-overflow, a false positive).
  const std::uint8_t prefix[] = {0x93,
                                 'N',
                                 'U',
                                 'M',
                                 'P',
                                 'Y',
                                 1,
                                 0,
                                 static_cast<std::uint8_t>(header.size() & 0xFF),
                                 static_cast<std::uint8_t>(header.size() >> 8)};
  std::vector<std::uint8_t> b(sizeof(prefix) + header.size() + data_bytes, 0);
  std::copy(std::begin(prefix), std::end(prefix), b.begin());
  std::copy(header.begin(), header.end(), b.begin() + sizeof(prefix));
  return b;
}

// Keras' to_categorical and F.one_hot give labels as one-hot rows: refused, naming the fix; other
// 2-D labels name their shape.
TEST(Npy, OneHotLabelsAreNamed) {
  auto labels = [](const std::vector<float>& values, int columns) {
    std::vector<std::uint8_t> b = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, " + std::to_string(columns) + "), }",
        values.size() * sizeof(float));
    std::memcpy(b.data() + b.size() - values.size() * sizeof(float), values.data(),
                values.size() * sizeof(float));
    const std::string path = testing::temp_path("labels_" + std::to_string(values[1]) + ".npy");
    testing::write_bytes(path, b);
    return error_of([&] { load_npy(fixture("x_f4_c.npy"), path, false); });
  };
  EXPECT_NE(labels({1, 0, 0, 1, 0, 1, 1, 0}, 2)
                .find("class labels of shape (4, 2) are one-hot rows; give each sample's class "
                      "index, shape (N): numpy.argmax(Y, axis=1)"),
            std::string::npos);
  // Two ones in a row, or soft labels: not one-hot; the shape is named.
  EXPECT_NE(labels({1, 1, 0, 1, 0, 1, 1, 0}, 2)
                .find("class labels must be (N) or (N, 1), not of shape (4, 2)"),
            std::string::npos);
  EXPECT_NE(labels({0.5F, 0.5F, 0, 1, 0, 1, 1, 0}, 2).find("not of shape (4, 2)"),
            std::string::npos);
}

TEST(Npy, HeaderParserRefusesWhatNumpyWouldNotWrite) {
  auto parse = [](const std::vector<std::uint8_t>& b) {
    return error_of([&] { parse_npy_header(b, "h.npy"); });
  };
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(parse(npy(ok, 24)), "(no error)");
  const NpyHeader h = parse_npy_header(npy(ok, 24), "h.npy");
  EXPECT_EQ(h.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(h.item_bytes, 4);
  EXPECT_EQ(h.data_offset, 10 + ok.size() + 1);
  // Keys in another order, a scalar, a 1-tuple, Python 2's longs, double quotes.
  EXPECT_EQ(parse(npy(R"({"shape": (3L,), "fortran_order": True, "descr": "|u1"})", 3)),
            "(no error)");
  EXPECT_EQ(parse_npy_header(npy("{'descr': '<i8', 'fortran_order': False, 'shape': ()}", 8), "s")
                .count(),
            1);
  const std::pair<std::string, std::string> bad[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "24 bytes of data"},
      {"{'descr': '<f4', 'fortran_order': False}", "lacks"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "repeated"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "'extra'"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}", "'<c8' is not numeric"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, -2)}", "expected a dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 2)}", "2^40"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "expected"},
      {"{'descr': 'f4', 'fortran_order': False, 'shape': (1,)}", "not understood"},
  };
  for (const auto& [header, part] : bad) {
    const std::string e = parse(npy(header, header.find("(2, 3)") != std::string::npos ? 23 : 4));
    EXPECT_NE(e.find(part), std::string::npos) << header << ": " << e;
  }
  std::vector<std::uint8_t> b = npy(ok, 24);
  b[6] = 4;  // version 4.0
  EXPECT_NE(parse(b).find("version 4.0 is not supported"), std::string::npos);
  b = npy(ok, 24);
  b[1] = 'X';
  EXPECT_NE(parse(b).find("not a .npy file"), std::string::npos);
  b = npy(ok, 24);
  b[8] = 0xFF;  // a header longer than the file
  EXPECT_NE(parse(b).find("header claims"), std::string::npos);
  EXPECT_NE(parse({0x93, 'N', 'U'}).find("not a .npy file"), std::string::npos);
}

}  // namespace
}  // namespace cutrain::data

namespace cutrain::data {
namespace {

// A gzipped .npy whose header declares 2 floats but which inflates to 16 MiB more is refused as
// soon as the stream passes the declared size.
TEST(Npy, DecompressionBombStopsAtTheDeclaredSize) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ').append("\n");
  std::vector<std::uint8_t> bytes = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<std::uint8_t>(header.size()), 0};
  bytes.insert(bytes.end(), header.begin(), header.end());
  const std::size_t declared = bytes.size() + 8;
  EXPECT_EQ(npy_declared_size(bytes), declared);
  bytes.resize(declared + (std::size_t{16} << 20), 0);
  testing::write_bytes(testing::temp_path("bomb.npy.gz"), testing::gzip_bytes(bytes));
  const std::string e = error_of([] { load_npy_features(testing::temp_path("bomb.npy.gz")); });
  EXPECT_NE(e.find("decompresses to more than the " + std::to_string(declared) +
                   " bytes its header declares"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace cutrain::data

namespace cutrain::data {
namespace {

// (0, 2^32, 2^32): no elements, but samples of 2^64 features - refused as too large, not read
// as "no features" through an overflowed product.
TEST(Npy, HugeSampleShapeOfAnEmptyArrayIsRefused) {
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, "
      "4294967296), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ').append("\n");
  std::vector<std::uint8_t> bytes = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<std::uint8_t>(header.size()), 0};
  bytes.insert(bytes.end(), header.begin(), header.end());
  testing::write_bytes(testing::temp_path("huge_shape.npy"), bytes);
  const std::string e = error_of([] { load_npy_features(testing::temp_path("huge_shape.npy")); });
  EXPECT_NE(e.find("has over 2^40 features"), std::string::npos) << e;
}

}  // namespace
}  // namespace cutrain::data
