#pragma once
// double -> float for values read from files, defined for every input: a conversion of a double
// beyond float's range is undefined behaviour in C++, so those become the infinity of their sign
// - or FLT_MAX within half an ulp of it - as IEEE round-to-nearest gives; NaN stays NaN, and tiny
// values round to denormals or zero (defined).

#include <cmath>
#include <limits>

namespace cutrain::data::detail {

inline float narrow_to_float(double v) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (v > kMax || v < -kMax) {
    const double edge = kMax + std::ldexp(1.0, 127 - 24);  // FLT_MAX + half its ulp
    if (v < edge && v > -edge) return static_cast<float>(v > 0 ? kMax : -kMax);
    return v > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  }
  return static_cast<float>(v);
}

}  // namespace cutrain::data::detail
