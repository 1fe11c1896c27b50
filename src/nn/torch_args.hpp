#pragma once
// Pieces of Layer::torch_args() (Note [architecture in exports]): numbers as Python reads them.

#include <charconv>
#include <cstdint>
#include <string>

namespace cutrain::nn::detail {

// A float: the shortest text that reads back as the same float ("0.1", not "0.100000001"), which
// Python's float() then rounds to that float again in float32 math.
inline std::string number(float v) {
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof(text), v);
  return {text, end};
}

// A torch 2-tuple argument as a JSON list: "[3, 3]".
inline std::string pair(std::int64_t h, std::int64_t w) {
  std::string s = "[";
  s.append(std::to_string(h)).append(", ").append(std::to_string(w)).append("]");
  return s;
}

}  // namespace cutrain::nn::detail
