#pragma once
// The C++ twin of `unit`, `grad` and `initial_params` in tests/optim/make_goldens.py: the
// golden inputs are computed, not stored, bit-identically on both sides (float32 arithmetic on
// values with 24 significant bits).

#include <cstdint>
#include <vector>

namespace cutrain::testing {

inline constexpr std::int64_t kGoldenRows = 48, kGoldenCols = 40, kGoldenBias = 70;
inline constexpr std::size_t kGoldenN = kGoldenRows * kGoldenCols + kGoldenBias;

inline std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline float unit(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t u = mix(seed * 0x9E3779B97F4A7C15ULL + i) >> 40;
  return static_cast<float>((2.0 * static_cast<double>(u) - 16777216.0) / 16777216.0);
}

inline std::vector<float> golden_initial_params() {
  std::vector<float> p(kGoldenN);
  for (std::size_t i = 0; i < kGoldenN; ++i) p[i] = unit(1, i);
  return p;
}

inline float golden_grad(int t, std::size_t i) {
  switch (i % 8) {
    case 0:
      return 0.0F;
    case 1:
      return unit(1000 + t, i) * 1e-6F;
    case 2:
      return unit(1000 + t, i) * 1e3F;
    case 3:
      return unit(7, i) * (t % 2 == 0 ? 1.0F : -1.0F);
    default:
      return unit(1000 + t, i);
  }
}

}  // namespace cutrain::testing
