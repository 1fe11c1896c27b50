#pragma once
// Test inputs from a fixed-seed std::mt19937 (independent of the cuRAND code under test).

#include <cstdint>
#include <random>
#include <vector>

namespace cutrain::testing {

inline std::vector<float> uniform_values(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace cutrain::testing
