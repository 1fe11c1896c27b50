#pragma once
// Gaussian blobs for trainer-level tests: row r has class r % classes, and feature f is
// `shift` when f % classes is that class (else 0) plus N(0, sigma) noise from a fixed-seed
// std::mt19937 (independent of the code under test). Separable with a margin for small sigma.

#include <cstdint>
#include <random>

#include "cutrain/data/dataset.hpp"

namespace cutrain::testing {

inline data::Dataset blobs(std::int64_t rows, std::int64_t features, std::int32_t classes,
                           float shift, float sigma, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0F, sigma);
  data::Dataset d;
  d.rows = rows;
  d.features = features;
  d.classes = classes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto c = static_cast<std::int32_t>(r % classes);
    for (std::int64_t f = 0; f < features; ++f)
      d.x.push_back((f % classes == c ? shift : 0.0F) + noise(rng));
    d.labels.push_back(c);
  }
  return d;
}

}  // namespace cutrain::testing
