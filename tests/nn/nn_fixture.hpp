#pragma once
// Helpers for the layer tests: host data on a device as a Matrix, and one-layer models.

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/nn.hpp"

namespace cutrain::testing {

struct DeviceMatrix {
  Buffer buffer;
  nn::Matrix m;
  DeviceMatrix(const std::vector<float>& host, std::int64_t rows, std::int64_t cols, Device device)
      : buffer(host.size() * sizeof(float), device), m{nullptr, rows, cols, device} {
    copy_bytes(buffer.data(), device, host.data(), Device::cpu(), buffer.bytes());
    m.data = buffer.as<float>();
  }
  DeviceMatrix(std::int64_t rows, std::int64_t cols, Device device)
      : DeviceMatrix(std::vector<float>(static_cast<std::size_t>(rows * cols)), rows, cols,
                     device) {}
};

struct DeviceLabels {
  Buffer buffer;
  DeviceLabels(const std::vector<std::int32_t>& host, Device device)
      : buffer(host.size() * sizeof(std::int32_t), device) {
    copy_bytes(buffer.data(), device, host.data(), Device::cpu(), buffer.bytes());
  }
  const std::int32_t* data() const { return buffer.as<std::int32_t>(); }
};

// Every tensor of an arena (a model's gradients, buffers, ...), in layout order.
inline std::vector<std::vector<float>> all_tensors(const Arena& arena) {
  std::vector<std::vector<float>> out;
  for (const TensorSpec& t : arena.layout().tensors()) out.push_back(arena.tensor_to_host(t.name));
  return out;
}

// n draws of N(0, 1) from `seed`: test inputs and incoming gradients.
inline std::vector<float> normal(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

inline std::vector<float> to_host(const nn::Matrix& m) {
  std::vector<float> out(m.size());
  copy_bytes(out.data(), Device::cpu(), m.data, m.device, out.size() * sizeof(float));
  return out;
}

inline const nlohmann::json& layer_goldens() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/nn/golden/layers.json");
    return nlohmann::json::parse(in);
  }();
  return j.at("cases");
}

inline std::vector<float> floats(const nlohmann::json& j) {
  return j.get<std::vector<float>>();
}

}  // namespace cutrain::testing
