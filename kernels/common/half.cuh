#pragma once
// 16-bit floating point as bits, one rule for both backends (Note [bit-identical backends]):
// bfloat16 (1 sign, 8 exponent, 7 mantissa bits: float32's top half) and IEEE binary16 "fp16"
// (1, 5, 10). The CPU backend stores 16-bit tensors as these bits exactly as the GPU does, so a
// mixed-precision run is testable without a GPU. tests/kernels/half_test.cpp checks every one of
// the 2^32 floats against CUDA's own conversions (cuda_bf16.h / cuda_fp16.h, whose host paths
// need no GPU): the same bits, NaN included.
//
// Note [16-bit rounding]: round-to-nearest-even by default, what cvt.rn and torch's .to() do.
// Stochastic rounding rounds up with probability (distance to the value below) / ulp, so the
// rounding is unbiased in expectation: a parameter whose updates are each below half an ulp
// still moves on average, where nearest-even would drop every one (adding 1e-3 to 1.0 a
// thousand times stays 1.0 in bf16 with nearest-even, and reaches ~2.0 stochastically). Its
// random bits are a counter-based hash of (seed, applied step, element index) - never of thread
// or block ids - so the bits do not depend on the launch shape and the CPU twin draws the same.
// NaN becomes CUDA's canonical 0x7FFF in both formats; the non-finite guard keeps NaN out of
// parameters anyway.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

enum class Half : std::uint8_t { kBf16, kFp16 };

CUTRAIN_HD std::uint32_t float_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}
CUTRAIN_HD float bits_float(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

// The rounding step shared by both formats: keep `q` (the truncated magnitude) or add one ulp.
// `rem` is what truncation dropped, `width` its bit count (1..31). Nearest-even: up when rem is
// above half an ulp, or exactly half and q is odd. Stochastic: up when `random`'s low `width`
// bits are below rem - probability rem / 2^width.
CUTRAIN_HD std::uint32_t round_dropped(std::uint32_t q, std::uint32_t rem, int width,
                                       bool stochastic, std::uint32_t random) {
  const std::uint32_t mask = (1U << width) - 1U;
  const std::uint32_t half = 1U << (width - 1);
  const bool up = stochastic ? (random & mask) < rem : rem > half || (rem == half && (q & 1U) != 0);
  return q + (up ? 1U : 0U);
}

CUTRAIN_HD std::uint16_t to_bf16(float x, bool stochastic = false, std::uint32_t random = 0) {
  const std::uint32_t u = float_bits(x);
  if ((u & 0x7FFFFFFFU) > 0x7F800000U) return 0x7FFFU;  // NaN
  // Sign and magnitude round together: the carry of a mantissa into the exponent (and of the
  // largest finite value into infinity) is the right result.
  return static_cast<std::uint16_t>(round_dropped(u >> 16, u & 0xFFFFU, 16, stochastic, random));
}

CUTRAIN_HD std::uint16_t to_fp16(float x, bool stochastic = false, std::uint32_t random = 0) {
  const std::uint32_t u = float_bits(x);
  const std::uint32_t sign = (u >> 16) & 0x8000U;
  const std::uint32_t a = u & 0x7FFFFFFFU;
  if (a > 0x7F800000U) return 0x7FFFU;              // NaN
  if (a == 0x7F800000U) return sign | 0x7C00U;      // infinity
  if (a >= 0x38800000U) {                           // at least 2^-14: a normal half (or overflow)
    const std::uint32_t rebased = a - 0x38000000U;  // exponent bias 127 -> 15
    if (rebased >= (0x1FU << 23)) return sign | 0x7C00U;  // 2^16 and up: beyond any rounding
    const std::uint32_t r = round_dropped(rebased >> 13, rebased & 0x1FFFU, 13, stochastic, random);
    return static_cast<std::uint16_t>(sign | (r >= 0x7C00U ? 0x7C00U : r));
  }
  // Below 2^-14: a subnormal half, m x 2^-24 with m < 1024. The float's value in units of 2^-24 is
  // its 24-bit significand shifted right by (126 - exponent) >= 14 places.
  const int exponent = static_cast<int>(a >> 23);
  const int shift = 126 - exponent;
  if (shift > 31) return static_cast<std::uint16_t>(sign);  // below 2^-32 (or zero): 0
  const std::uint32_t significand = (a & 0x7FFFFFU) | 0x800000U;
  const std::uint32_t r = round_dropped(significand >> shift, significand & ((1U << shift) - 1U),
                                        shift, stochastic, random);
  return static_cast<std::uint16_t>(sign | r);  // r == 0x400: rounded up to the smallest normal
}

CUTRAIN_HD float from_bf16(std::uint16_t h) {
  return bits_float(static_cast<std::uint32_t>(h) << 16);
}

CUTRAIN_HD float from_fp16(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000U) << 16;
  const std::uint32_t e = (h >> 10) & 0x1FU;
  const std::uint32_t m = h & 0x3FFU;
  if (e == 0x1F) return bits_float(sign | 0x7F800000U | (m << 13));  // inf / NaN
  if (e != 0) return bits_float(sign | ((e + 112U) << 23) | (m << 13));
  // Subnormal: m x 2^-24, exact in float.
  const float magnitude = static_cast<float>(m) * 5.9604644775390625e-8F;  // 2^-24
  return sign != 0 ? -magnitude : magnitude;
}

CUTRAIN_HD std::uint16_t to_half(Half kind, float x, bool stochastic = false,
                                 std::uint32_t random = 0) {
  return kind == Half::kBf16 ? to_bf16(x, stochastic, random) : to_fp16(x, stochastic, random);
}
CUTRAIN_HD float from_half(Half kind, std::uint16_t h) {
  return kind == Half::kBf16 ? from_bf16(h) : from_fp16(h);
}
// x rounded to the nearest (even) 16-bit value, as a float: what storing x in 16 bits and
// reading it back gives (Note [16-bit values in fp32 storage], cutrain/precision.hpp).
// Branch-free (selects only), so that the CPU's rounding loops vectorize:
// - dropping the low k bits of a float's magnitude with nearest-even is adding 2^(k-1) - 1 plus
//   the kept part's lowest bit and masking: it carries exactly when to_half rounds up (above
//   half, or half and odd), into the exponent and to inf as it does. bf16 drops 16 bits; fp16's
//   normal range 13;
// - below 2^-14 fp16 is fixed-point in units of 2^-24, the ulp of 0.5f: (|x| + 0.5f) - 0.5f
//   rounds |x| to a multiple of it, nearest-even, in the float addition itself;
// - fp16 overflows to inf from 65520 (65504 + half its ulp: a tie, to even, is inf);
// - NaN becomes the canonical NaN, as to_half makes it.
// Half.RoundHalfIsTheRoundTripForEveryFloat checks it against from_half(to_half(x)) for every
// float.
CUTRAIN_HD float round_half(Half kind, float x) {
  const std::uint32_t u = float_bits(x);
  const std::uint32_t a = u & 0x7FFFFFFFU;
  const bool nan = a > 0x7F800000U;
  if (kind == Half::kBf16) {
    const std::uint32_t r = (u + 0x7FFFU + ((u >> 16) & 1U)) & 0xFFFF0000U;
    return bits_float(nan ? 0x7FFF0000U : r);
  }
  const std::uint32_t sign = u & 0x80000000U;
  const std::uint32_t normal = (a + 0xFFFU + ((a >> 13) & 1U)) & ~0x1FFFU;
  const std::uint32_t subnormal = float_bits((bits_float(a) + 0.5F) - 0.5F);
  const std::uint32_t magnitude = a >= 0x477FF000U   ? 0x7F800000U  // 65520 and up (inf too)
                                  : a >= 0x38800000U ? normal       // 2^-14 and up
                                                     : subnormal;
  return bits_float(nan ? 0x7FFFE000U : (sign | magnitude));
}

// to_half(kind, x) with nearest-even, branch-free (selects only) for loops that must vectorize
// (the CPU's compute-copy store): round_half's value, whose float bits hold the 16-bit pattern -
// bf16 its high half; fp16 the exponent rebased (normal), or the value in units of 2^-24, an
// exact integer below 1024 (subnormal). Half.RoundHalfIsTheRoundTripForEveryFloat checks it
// against to_half for every float.
CUTRAIN_HD std::uint16_t to_half_nearest(Half kind, float x) {
  const std::uint32_t b = float_bits(round_half(kind, x));
  if (kind == Half::kBf16) return static_cast<std::uint16_t>(b >> 16);
  const std::uint32_t a = b & 0x7FFFFFFFU;
  const std::uint32_t sign = (b >> 16) & 0x8000U;
  // (Converted for every input, so the select comes first: a float beyond 2^32 has no uint32.)
  const auto subnormal =
      static_cast<std::uint32_t>(bits_float(a < 0x38800000U ? a : 0U) * 16777216.0F);  // x 2^24
  const std::uint32_t magnitude = a == 0x7F800000U   ? 0x7C00U
                                  : a >= 0x38800000U ? (a - 0x38000000U) >> 13
                                                     : subnormal;
  return static_cast<std::uint16_t>(a > 0x7F800000U ? 0x7FFFU : sign | magnitude);
}

// Note [16-bit stores]: in a bf16 / fp16 model (Note [16-bit values in fp32 storage],
// cutrain/precision.hpp) the kernels that write a layer's output or input gradient in a pass of
// their own - BatchNorm's apply and input gradient, Dropout, the convolution's output permute and
// col2im - round what they store, instead of the model rounding the array in a pass after them:
// the same value rounded the same way, so the same bits, and a pass over the activation fewer.
// Such a layer says so (nn::Layer::keeps_16bit_values). kExact (fp32 and tf32 models) stores
// the value as it is.
enum class Store : std::uint8_t { kExact, kBf16, kFp16 };
CUTRAIN_HD float stored(Store s, float x) {
  return s == Store::kExact ? x : round_half(s == Store::kBf16 ? Half::kBf16 : Half::kFp16, x);
}
// f(std::integral_constant<Store, s>{}): the store as a constant, for the CPU's loops - with
// `s` a run-time value inside them g++ leaves them scalar (the default CNN's bf16 step took 8%
// longer than with the rounding in a pass of its own).
template <class F>
decltype(auto) with_store(Store s, F&& f) {
  switch (s) {
    case Store::kBf16:
      return f(std::integral_constant<Store, Store::kBf16>{});
    case Store::kFp16:
      return f(std::integral_constant<Store, Store::kFp16>{});
    default:
      return f(std::integral_constant<Store, Store::kExact>{});
  }
}

// Note [16-bit rounding]: the random bits of element `index` at applied step `step` -
// splitmix64's finalizer over a Weyl sequence in the three counters, so neighbouring elements and
// steps get independent-looking bits.
CUTRAIN_HD std::uint32_t rounding_bits(std::uint64_t seed, std::uint64_t step,
                                       std::uint64_t index) {
  std::uint64_t z = seed + step * 0x9E3779B97F4A7C15ULL + index * 0xD1B54A32D192ED03ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return static_cast<std::uint32_t>((z ^ (z >> 31)) >> 32);
}

}  // namespace cutrain::rules
