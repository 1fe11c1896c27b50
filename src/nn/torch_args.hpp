#pragma once
// Pieces of Layer::torch_args() (Note [architecture in exports]): numbers as Python reads them.

#include <charconv>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cutrain/nn/layer.hpp"

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

// Layers as a JSON array of {"type": kind(), "args": torch_args()} (Note [architecture in
// exports]): a Sequential's modules, a Residual's body.
inline std::string modules_json(const std::vector<std::unique_ptr<Layer>>& layers) {
  std::string out = "[";
  for (std::size_t i = 0; i < layers.size(); ++i)
    out.append(i ? ", " : "")
        .append("{\"type\": \"")
        .append(layers[i]->kind())
        .append("\", \"args\": ")
        .append(layers[i]->torch_args())
        .append("}");
  return out + "]";
}

}  // namespace cutrain::nn::detail
