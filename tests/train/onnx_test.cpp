// ONNX export's own pieces (ONNX Runtime runs the exported models in tests/onnx_export_test.py):
// the protobuf encodings against the specification's worked examples, the model header, a layer
// too large to express, and an export that cannot be written (no partial file).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/train/onnx.hpp"
#include "src/io/protobuf.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain {
namespace {

std::vector<int> bytes_of(const io::pb::Writer& w) {
  std::vector<int> out;
  for (const char c : w.data()) out.push_back(static_cast<unsigned char>(c));
  return out;
}

// protobuf.dev/programming-guides/encoding: field 1 = 150 is 08 96 01; field 2 = "testing" is
// 12 07 74 65 73 74 69 6e 67; -2 as int64 takes ten bytes; packed [3, 270, 86942] in field 4 is
// 22 06 03 8E 02 9E A7 05; a float is its four little-endian bytes.
TEST(Protobuf, EncodesAsTheSpecificationsExamples) {
  io::pb::Writer w;
  w.varint(1, 150);
  EXPECT_EQ(bytes_of(w), (std::vector<int>{0x08, 0x96, 0x01}));
  io::pb::Writer s;
  s.bytes(2, "testing");
  EXPECT_EQ(bytes_of(s), (std::vector<int>{0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67}));
  io::pb::Writer n;
  n.varint(1, -2);
  EXPECT_EQ(bytes_of(n),
            (std::vector<int>{0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  io::pb::Writer p;
  const std::vector<std::int64_t> values{3, 270, 86942};
  p.packed(4, values);
  EXPECT_EQ(bytes_of(p), (std::vector<int>{0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05}));
  io::pb::Writer f;
  f.f32(2, 1.0F);  // 0x3F800000
  EXPECT_EQ(bytes_of(f), (std::vector<int>{0x15, 0x00, 0x00, 0x80, 0x3F}));
  io::pb::Writer outer;
  outer.message(3, w);  // an embedded message is length-delimited: 1a 03 08 96 01
  EXPECT_EQ(bytes_of(outer), (std::vector<int>{0x1A, 0x03, 0x08, 0x96, 0x01}));
}

nn::Sequential small_model() {
  nn::Sequential m(4);
  m.emplace<nn::Linear>(4, 3).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  m.emplace<nn::Linear>(3, 2);
  m.build(Device::cpu(), 1);
  return m;
}

TEST(Onnx, ModelStartsWithItsIrVersionAndNamesItsProducer) {
  nn::Sequential m = small_model();
  const std::string bytes = train::onnx_model_bytes(m);
  ASSERT_GE(bytes.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x08);  // field 1 (ir_version), varint
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 8);     // IR version 8
  EXPECT_NE(bytes.find("cutrain"), std::string::npos);
  EXPECT_NE(bytes.find("Gemm"), std::string::npos);
  EXPECT_NE(bytes.find("cutrain.modules"), std::string::npos);
}

TEST(Onnx, RefusesWhatItCannotExpressAndLeavesNoPartialFile) {
  // Adaptive pooling whose windows differ (4096 is not a multiple of 3) is a MatMul by a pooling
  // matrix, here of 2^24 x 9 values: refused, naming the way out.
  nn::Sequential m(4096 * 4096);
  m.emplace<nn::Unflatten>(1, Shape{1, 4096, 4096});
  m.emplace<nn::AdaptiveAvgPool2d>(nn::Size2{3, 3});
  m.emplace<nn::Flatten>();
  m.build(Device::cpu(), 1);
  const std::string e = testing::error_of([&] { train::onnx_model_bytes(m); });
  EXPECT_NE(e.find("layer 1 (AdaptiveAvgPool2d to 3x3) of [1, 4096, 4096] would need a 16777216 x "
                   "9 pooling matrix"),
            std::string::npos)
      << e;
  nn::Sequential ok = small_model();
  const std::string dir = testing::temp_path("cutrain_onnx_test", "no-such-dir");
  std::filesystem::remove_all(dir);
  EXPECT_THROW(train::export_onnx(dir + "/m.onnx", ok), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.onnx"));
  const std::string path = testing::temp_path("cutrain_onnx_test", "m.onnx");
  train::export_onnx(path, ok);
  EXPECT_EQ(std::filesystem::file_size(path), train::onnx_model_bytes(ok).size());
  // Note [test-time flips]: images that do not hold the model's features are refused.
  train::OnnxOptions with_flips;
  with_flips.augment = {.image = {1, 2, 3}, .flip = true};
  const std::string flips = testing::error_of([&] { train::onnx_model_bytes(ok, with_flips); });
  EXPECT_NE(flips.find("export_onnx: the image shape [1, 2, 3] holds 6 values but a sample has 4"),
            std::string::npos)
      << flips;
}

}  // namespace
}  // namespace cutrain
