// safetensors I/O (src/io/safetensors.cpp): round trips, a numpy reader, defensive loading, the
// data checksum, and a save loop killed with SIGKILL that must leave a loadable file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "data/data_fixture.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain {
namespace {

std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_safetensors_test", name);
}

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_all(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<io::TensorData> sample_tensors() {
  std::vector<float> a(12), b(5);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.5F * static_cast<float>(i) - 2;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i * i);
  return {io::make_tensor("layers.0.weight", {3, 4}, a), io::make_tensor("layers.0.bias", {5}, b)};
}

TEST(Safetensors, RoundTripWithMetadata) {
  const auto t = sample_tensors();
  io::save_safetensors(tmp("a.safetensors"), t, {{"epoch", "3"}, {"note", "hi \"there\""}});
  const io::SafetensorsFile f = io::load_safetensors(tmp("a.safetensors"));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "layers.0.weight");
  EXPECT_EQ(f.tensors[0].shape, (Shape{3, 4}));
  EXPECT_EQ(f.find("layers.0.bias")->floats(), t[1].floats());
  EXPECT_EQ(f.metadata.at("note"), "hi \"there\"");
  // The data section starts 8-byte aligned, as the format recommends.
  const auto bytes = read_all(tmp("a.safetensors"));
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t{bytes[static_cast<std::size_t>(i)]} << (8 * i);
  EXPECT_EQ(n % 8, 0u);
}

// A tensor with a 0 in its shape has no bytes: written, read and widened without touching data
// (a memcpy with a null pointer was undefined behaviour, found by the fuzzer).
TEST(Safetensors, ZeroElementTensorsRoundTrip) {
  const std::vector<float> none;
  io::save_safetensors(tmp("empty.safetensors"),
                       {io::make_tensor("empty", {0, 3}, none), sample_tensors()[1]}, {});
  const io::SafetensorsFile f = io::load_safetensors(tmp("empty.safetensors"));
  ASSERT_NE(f.find("empty"), nullptr);
  EXPECT_EQ(f.find("empty")->shape, (Shape{0, 3}));
  EXPECT_TRUE(f.find("empty")->floats().empty());
  EXPECT_EQ(f.find("layers.0.bias")->floats(), sample_tensors()[1].floats());
}

TEST(Safetensors, NumpyReadsWhatWeWrite) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no /usr/bin/python3 with numpy (apt-get install python3-numpy)";
  io::save_safetensors(tmp("np.safetensors"), sample_tensors(), {{"k", "v"}});
  const std::string script = std::string(CUTRAIN_TEST_DIR) + "/train/read_safetensors.py";
  const std::string cmd =
      "/usr/bin/python3 " + script + " " + tmp("np.safetensors") + " > " + tmp("np.out");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(tmp("np.out"));
  std::string line, all;
  while (std::getline(in, line)) all += line + "\n";
  // sum of layers.0.weight = sum(0.5 i - 2, i < 12) = 9; of bias = 0+1+4+9+16 = 30
  EXPECT_NE(all.find("layers.0.weight (3, 4) float32 9.0"), std::string::npos) << all;
  EXPECT_NE(all.find("layers.0.bias (5,) float32 30.0"), std::string::npos) << all;
}

TEST(Safetensors, RejectsDamagedFiles) {
  io::save_safetensors(tmp("good.safetensors"), sample_tensors(), {});
  const auto good = read_all(tmp("good.safetensors"));
  auto check = [&](std::vector<std::uint8_t> bytes, const char* expect) {
    write_all(tmp("bad.safetensors"), bytes);
    const std::string e = testing::error_of([] { io::load_safetensors(tmp("bad.safetensors")); });
    EXPECT_NE(e.find(expect), std::string::npos) << e;
  };
  check({1, 2, 3}, "shorter than the 8-byte header length");
  // Safetensors is never compressed: a gzip stream is refused, not inflated.
  check(testing::gzip_bytes(good), "is gzip-compressed, and this format is read only as written");
  auto truncated = good;
  truncated.resize(good.size() - 10);
  check(truncated, "outside the");
  auto huge = good;
  huge[7] = 0x7F;
  check(huge,
        "not a safetensors file, or a damaged one: its header length (the first 8 bytes) "
        "reads ");
  // A text file (a CSV given as a model) says so, with its first characters.
  const std::string csv = "x1,x2,label\n0.5,1.5,0\n1,2.5,1\n";
  check({csv.begin(), csv.end()},
        "not a safetensors file: it begins with text ('x1,x2,label 0.5,1.5,0 1,...')");
  auto past = good;
  past[0] = 0xF0;
  past[1] = 0xFF;
  past[2] = 0x0F;
  check(past, "runs past the end");
  auto flipped = good;
  flipped[9] ^= 0x40;  // breaks the JSON
  check(flipped, "not valid JSON");
  const std::string header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})";
  std::vector<std::uint8_t> wrong(8 + header.size() + 12, 0);
  wrong[0] = static_cast<std::uint8_t>(header.size());
  std::copy(header.begin(), header.end(), wrong.begin() + 8);
  check(wrong, "needs 16 bytes but data_offsets give 12");
  // A type cutrain does not read (F32, BF16, F16 and I64 it does).
  const std::string f64 = R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})";
  std::vector<std::uint8_t> wide(8 + f64.size() + 16, 0);
  wide[0] = static_cast<std::uint8_t>(f64.size());
  std::copy(f64.begin(), f64.end(), wide.begin() + 8);
  check(wide, "has dtype F64; cutrain reads F32, BF16, F16 (and I64) tensors");
  // The tensors must tile the data once: a name given twice, overlapping ranges, bytes no tensor
  // claims (the reference loader's rules; the last entry used to win).
  auto raw = [](const std::string& h, std::size_t data) {
    std::vector<std::uint8_t> b(8 + h.size() + data, 0);
    b[0] = static_cast<std::uint8_t>(h.size());
    std::copy(h.begin(), h.end(), b.begin() + 8);
    return b;
  };
  check(raw(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            8),
        "names 'w' twice");
  check(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            8),
        "overlap");
  check(raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
            12),
        "bytes [4, 8) of the data belong to no tensor");
  check(raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
        "the last 4 bytes of the data belong to no tensor");
  EXPECT_NE(testing::error_of([] {
              io::load_safetensors(tmp("none.safetensors"));
            }).find("none.safetensors"),
            std::string::npos);
}

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) bit by bit, as the textbook writes it:
// the independent reference for the checksum cutrain writes with zlib.
std::uint32_t textbook_crc32(const std::uint8_t* p, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFFU;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320U & (0U - (crc & 1U)));
  }
  return ~crc;
}

std::size_t data_start(const std::vector<std::uint8_t>& bytes) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t{bytes[static_cast<std::size_t>(i)]} << (8 * i);
  return 8 + static_cast<std::size_t>(n);
}

// Note [data checksum]: damage that keeps the file's structure (same length, valid header) is
// what the structural checks cannot see.
TEST(Safetensors, ChecksumCatchesDamageThatKeepsTheStructure) {
  const std::string check = "123456789";
  ASSERT_EQ(textbook_crc32(reinterpret_cast<const std::uint8_t*>(check.data()), check.size()),
            0xCBF43926U);  // the standard check value
  io::save_safetensors(tmp("crc.safetensors"), sample_tensors(), {{"k", "v"}});
  const auto good = read_all(tmp("crc.safetensors"));
  const std::size_t start = data_start(good);
  char want[9];
  std::snprintf(want, sizeof(want), "%08x",
                textbook_crc32(good.data() + start, good.size() - start));
  const io::SafetensorsFile f = io::load_safetensors(tmp("crc.safetensors"));
  EXPECT_EQ(f.metadata.at(io::kDataCrcKey), want);
  EXPECT_EQ(f.metadata.at("k"), "v");

  auto damaged = good;
  damaged.back() ^= 0x01;  // one bit of the last float
  write_all(tmp("crc_bad.safetensors"), damaged);
  const std::string e = testing::error_of([] { io::load_safetensors(tmp("crc_bad.safetensors")); });
  EXPECT_NE(e.find("does not match its checksum"), std::string::npos) << e;
  EXPECT_NE(e.find(want), std::string::npos) << e;

  // A file from another writer has no checksum and is read as it is.
  io::SafetensorsFile other = f;
  other.metadata.erase(io::kDataCrcKey);
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::vector<std::uint8_t> plain(8 + header.size() + 4, 0);
  plain[0] = static_cast<std::uint8_t>(header.size());
  std::copy(header.begin(), header.end(), plain.begin() + 8);
  plain.back() = 0x3F;  // 0x3F000000 = 0.5
  write_all(tmp("plain.safetensors"), plain);
  EXPECT_EQ(io::load_safetensors(tmp("plain.safetensors")).find("w")->floats(),
            std::vector<float>{0.5F});
  // A malformed checksum entry is named.
  const std::string bad_meta =
      R"({"__metadata__":{"cutrain.data_crc32":"xyz"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::vector<std::uint8_t> odd(8 + bad_meta.size() + 4, 0);
  odd[0] = static_cast<std::uint8_t>(bad_meta.size());
  std::copy(bad_meta.begin(), bad_meta.end(), odd.begin() + 8);
  write_all(tmp("odd.safetensors"), odd);
  EXPECT_NE(testing::error_of([] {
              io::load_safetensors(tmp("odd.safetensors"));
            }).find("'cutrain.data_crc32' = 'xyz' is not 8 hex digits"),
            std::string::npos);
}

TEST(Safetensors, KilledSaveLoopLeavesALoadableFile) {
  const auto tensors = sample_tensors();
  const std::string path = tmp("killed.safetensors");
  io::save_safetensors(path, tensors, {{"v", "0"}});
  std::mt19937 rng(3);
  for (int round = 0; round < 5; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0;; ++i) io::save_safetensors(path, tensors, {{"v", std::to_string(i)}});
    }
    ::usleep(1000 + rng() % 20000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const io::SafetensorsFile f = io::load_safetensors(path);  // must not throw
    EXPECT_EQ(f.find("layers.0.weight")->floats(), tensors[0].floats());
  }
}

}  // namespace
}  // namespace cutrain
