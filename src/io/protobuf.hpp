#pragma once
// A protobuf wire-format writer: the few encodings ONNX's messages need (varints, 32-bit floats,
// length-delimited bytes and nested messages, packed int64 lists). Fields are appended in the
// order they are written; a reader accepts any order. Encoding rules:
// https://protobuf.dev/programming-guides/encoding/ (tag = field << 3 | wire type).

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace cutrain::io::pb {

class Writer {
 public:
  /// Wire type 0: int32/int64/enum/bool (negative values as 10-byte two's complement, as
  /// protobuf encodes int64).
  Writer& varint(std::uint32_t field, std::int64_t value) {
    tag(field, 0);
    raw_varint(static_cast<std::uint64_t>(value));
    return *this;
  }
  /// Wire type 5: float, little-endian.
  Writer& f32(std::uint32_t field, float value) {
    tag(field, 5);
    char b[4];
    std::memcpy(b, &value, 4);  // IEEE 754 binary32; little-endian hosts only (x86-64, aarch64)
    out_.append(b, 4);
    return *this;
  }
  /// Wire type 2: string / bytes.
  Writer& bytes(std::uint32_t field, std::string_view data) {
    tag(field, 2);
    raw_varint(data.size());
    out_.append(data);
    return *this;
  }
  Writer& message(std::uint32_t field, const Writer& m) { return bytes(field, m.out_); }
  /// A repeated int64 field, packed (one length-delimited run of varints).
  Writer& packed(std::uint32_t field, std::span<const std::int64_t> values) {
    Writer run;
    for (const std::int64_t v : values) run.raw_varint(static_cast<std::uint64_t>(v));
    return bytes(field, run.out_);
  }
  const std::string& data() const { return out_; }

 private:
  void tag(std::uint32_t field, std::uint32_t wire) { raw_varint((field << 3) | wire); }
  void raw_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

}  // namespace cutrain::io::pb
