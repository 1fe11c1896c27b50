// libFuzzer target: the IDX parser on arbitrary bytes (and through the gzip path when the input
// carries the gzip magic). Any input must give a value or cutrain::Error - never a crash, a
// sanitizer report or an allocation the input's size does not justify.
#include <cstddef>
#include <cstdint>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    if (size >= 2 && data[0] == 0x1F && data[1] == 0x8B) {
      const auto raw = cutrain::data::gunzip(bytes, "fuzz.gz", std::size_t{1} << 24,
                                             cutrain::data::idx_declared_size);
      cutrain::data::parse_idx(raw, "fuzz");
    } else {
      cutrain::data::parse_idx(bytes, "fuzz");
    }
  } catch (const cutrain::Error&) {
  }
  return 0;
}
