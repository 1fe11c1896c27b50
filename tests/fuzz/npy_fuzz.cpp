// libFuzzer target: the .npy reader on arbitrary bytes - the header parser, then both element
// conversions (floats in C order, class labels) when the header passes. Any input must give a
// value or cutrain::Error - never a crash, a sanitizer report or an allocation the input's size
// does not justify (parse_npy_header checks the claimed elements against the bytes present).
#include <cstddef>
#include <cstdint>

#include "cutrain/data/npy.hpp"
#include "cutrain/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    const cutrain::data::NpyHeader h = cutrain::data::parse_npy_header(bytes, "fuzz.npy");
    cutrain::data::npy_floats(bytes, h, "fuzz.npy");
    cutrain::data::npy_labels(bytes, h, "fuzz.npy");
  } catch (const cutrain::Error&) {
  }
  return 0;
}
