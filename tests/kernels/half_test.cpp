// 16-bit conversions (kernels/common/half.cuh): every float against CUDA's own host conversions,
// every 16-bit pattern back to float, and stochastic rounding's defining properties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/common/half.cuh"

#if __has_include(<cuda_bf16.h>) && __has_include(<cuda_fp16.h>)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define CUTRAIN_HAVE_CUDA_HALF 1
#endif

namespace cutrain::rules {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kStride = 251;  // the sanitizer build: every 251st float (17M of them)
#else
constexpr std::uint64_t kStride = 1;  // every one of the 2^32 floats
#endif

#ifdef CUTRAIN_HAVE_CUDA_HALF
std::uint16_t cuda_bf16(float x) {
  const __nv_bfloat16_raw raw = __float2bfloat16_rn(x);
  return raw.x;
}
std::uint16_t cuda_fp16(float x) {
  const __half_raw raw = __float2half_rn(x);
  return raw.x;
}

TEST(Half, EveryFloatRoundsAsCudaDoes) {
  std::uint64_t bf16_wrong = 0, fp16_wrong = 0, first_bf16 = 0, first_fp16 = 0;
#pragma omp parallel for schedule(static) reduction(+ : bf16_wrong, fp16_wrong)
  for (std::int64_t k = 0; k < static_cast<std::int64_t>((std::uint64_t{1} << 32) / kStride); ++k) {
    const auto u = static_cast<std::uint32_t>(static_cast<std::uint64_t>(k) * kStride);
    const float x = bits_float(u);
    if (to_bf16(x) != cuda_bf16(x)) {
      ++bf16_wrong;
      first_bf16 = u;  // any one of them, for the message
    }
    if (to_fp16(x) != cuda_fp16(x)) {
      ++fp16_wrong;
      first_fp16 = u;
    }
  }
  EXPECT_EQ(bf16_wrong, 0U) << "e.g. float bits 0x" << std::hex << first_bf16;
  EXPECT_EQ(fp16_wrong, 0U) << "e.g. float bits 0x" << std::hex << first_fp16;
}

TEST(Half, EverySixteenBitPatternWidensAsCudaDoes) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    __nv_bfloat16_raw braw;
    __half_raw fraw;
    braw.x = h;
    fraw.x = h;
    const __nv_bfloat16 bh(braw);
    const __half fh(fraw);
    const float want_b = __bfloat162float(bh), want_f = __half2float(fh);
    // NaNs compare by class (the payload is the format's to choose); everything else by bits.
    if (std::isnan(want_b)) {
      EXPECT_TRUE(std::isnan(from_bf16(h))) << b;
    } else {
      EXPECT_EQ(float_bits(from_bf16(h)), float_bits(want_b)) << b;
    }
    if (std::isnan(want_f)) {
      EXPECT_TRUE(std::isnan(from_fp16(h))) << b;
    } else {
      ASSERT_EQ(float_bits(from_fp16(h)), float_bits(want_f)) << "fp16 bits " << b;
    }
  }
}
#endif

// The branch-free round trip the model's rounding passes use, and the branch-free nearest-even
// store of the CPU's compute copy, are the rule's, for every float.
TEST(Half, RoundHalfIsTheRoundTripForEveryFloat) {
  std::uint64_t wrong = 0, first = 0;
#pragma omp parallel for schedule(static) reduction(+ : wrong)
  for (std::int64_t k = 0; k < static_cast<std::int64_t>((std::uint64_t{1} << 32) / kStride); ++k) {
    const auto u = static_cast<std::uint32_t>(static_cast<std::uint64_t>(k) * kStride);
    const float x = bits_float(u);
    if (float_bits(round_half(Half::kBf16, x)) != float_bits(from_bf16(to_bf16(x))) ||
        float_bits(round_half(Half::kFp16, x)) != float_bits(from_fp16(to_fp16(x))) ||
        to_half_nearest(Half::kBf16, x) != to_bf16(x) ||
        to_half_nearest(Half::kFp16, x) != to_fp16(x)) {
      ++wrong;
      first = u;
    }
  }
  EXPECT_EQ(wrong, 0U) << "e.g. float bits 0x" << std::hex << first;
}

// Landmarks, independent of CUDA's headers: the formats' own definitions.
TEST(Half, LandmarksOfBothFormats) {
  EXPECT_EQ(to_bf16(1.0F), 0x3F80U);
  EXPECT_EQ(to_fp16(1.0F), 0x3C00U);
  EXPECT_EQ(to_fp16(65504.0F), 0x7BFFU);  // the largest finite half
  EXPECT_EQ(to_fp16(65520.0F), 0x7C00U);  // halfway to 2^16: ties to even, infinity
  EXPECT_EQ(to_fp16(-65519.0F), 0xFBFFU);
  EXPECT_EQ(to_fp16(std::ldexp(1.0F, -24)), 0x0001U);  // the smallest subnormal
  EXPECT_EQ(to_fp16(std::ldexp(1.0F, -25)), 0x0000U);  // half of it: ties to even, zero
  EXPECT_EQ(to_fp16(std::ldexp(1.5F, -25)), 0x0001U);
  EXPECT_EQ(to_bf16(1.0F + std::ldexp(1.0F, -8)), 0x3F80U);  // a tie: to even
  EXPECT_EQ(to_bf16(1.0F + std::ldexp(3.0F, -8)), 0x3F82U);  // a tie: to even, upward
  EXPECT_EQ(to_bf16(std::nanf("")), 0x7FFFU);
  EXPECT_EQ(from_fp16(0x0001U), std::ldexp(1.0F, -24));
  EXPECT_EQ(from_bf16(0xC040U), -3.0F);
}

// Note [16-bit rounding]: stochastic rounding is unbiased, and it lets updates below half an ulp
// accumulate where nearest-even drops every one.
TEST(Half, StochasticRoundingIsUnbiasedAndAccumulatesSmallUpdates) {
  for (const Half kind : {Half::kBf16, Half::kFp16}) {
    const float x = kind == Half::kBf16 ? 1.0F + std::ldexp(1.0F, -9) * 0.7F    // 0.35 ulp up
                                        : 1.0F + std::ldexp(1.0F, -10) * 0.3F;  // 0.3 ulp up
    double sum = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i)
      sum += from_half(kind,
                       to_half(kind, x, true, rounding_bits(11, 0, static_cast<std::uint64_t>(i))));
    const double ulp = kind == Half::kBf16 ? std::ldexp(1.0, -7) : std::ldexp(1.0, -10);
    // The mean of n Bernoulli(p) ulps: standard deviation ulp sqrt(p (1 - p) / n) ~ 0.001 ulp.
    EXPECT_NEAR(sum / n, x, 0.005 * ulp) << (kind == Half::kBf16 ? "bf16" : "fp16");
    EXPECT_EQ(from_half(kind, to_half(kind, x)), 1.0F);  // nearest: always down
  }
  float nearest = 1.0F, stochastic = 1.0F;
  for (std::uint64_t step = 0; step < 1000; ++step) {
    nearest = from_bf16(to_bf16(nearest + 1e-3F));
    stochastic = from_bf16(to_bf16(stochastic + 1e-3F, true, rounding_bits(5, step, 0)));
  }
  EXPECT_EQ(nearest, 1.0F);  // 1e-3 is below half of bf16's ulp at 1 (2^-8)
  EXPECT_NEAR(stochastic, 2.0F, 0.15F);
}

TEST(Half, RoundingBitsDependOnEveryCounter) {
  const std::uint32_t a = rounding_bits(1, 2, 3);
  EXPECT_EQ(a, rounding_bits(1, 2, 3));
  EXPECT_NE(a, rounding_bits(2, 2, 3));
  EXPECT_NE(a, rounding_bits(1, 3, 3));
  EXPECT_NE(a, rounding_bits(1, 2, 4));
}

}  // namespace
}  // namespace cutrain::rules
