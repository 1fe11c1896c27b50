#pragma once
// Test inputs from a fixed-seed std::mt19937 (independent of the cuRAND code under test).

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "cutrain/arena.hpp"

namespace cutrain::testing {

inline std::vector<float> uniform_values(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> normal_values(std::size_t n, float sd, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0F, sd);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// An arena of `layout` on `device`, each tensor filled with normal(0, sd) values from `seed`.
inline Arena normal_arena(const std::shared_ptr<const ArenaLayout>& layout, Device device,
                          std::uint32_t seed, float sd) {
  Arena a(layout, Device::cpu());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, sd);
  for (const auto& t : a.layout().tensors()) {
    std::vector<float> v(t.numel);
    for (float& x : v) x = normal(rng);
    a.tensor_from_host(t.name, v);
  }
  return a.copy_to(device);
}

}  // namespace cutrain::testing
