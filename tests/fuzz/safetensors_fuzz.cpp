// libFuzzer target: the safetensors (checkpoint) parser on arbitrary bytes. Any input gives a
// parsed file or cutrain::Error: never a crash, a sanitizer report, or an allocation that the
// input's size does not justify.
#include <cstddef>
#include <cstdint>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto f = cutrain::io::parse_safetensors({data, size}, "fuzz.safetensors");
    for (const auto& t : f.tensors)
      if (cutrain::io::is_float(t.dtype)) (void)t.floats();
  } catch (const cutrain::Error&) {
  }
  return 0;
}
