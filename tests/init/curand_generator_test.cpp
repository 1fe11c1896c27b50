// The cuRAND RAII owner. The host generator runs without a GPU (also in CPU-only builds).
#include <gtest/gtest.h>

#include <curand.h>

#include <cmath>
#include <vector>

#include "cutrain/buffer.hpp"
#include "src/rng/curand_generator.hpp"
#include "src/rng/philox_host.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

std::vector<float> host_uniform(std::uint64_t seed, std::uint64_t offset, std::size_t n) {
  detail::CurandGenerator gen(Device::cpu(), seed, offset);
  std::vector<float> v(n);
  gen.uniform(v.data(), n);
  return v;
}

TEST(CurandGenerator, HostGeneratorIsSeededAndUniform) {
  const std::size_t n = 1 << 20;
  const auto a = host_uniform(1234, 0, n);
  EXPECT_EQ(a, host_uniform(1234, 0, n));  // same seed, same numbers
  EXPECT_NE(a, host_uniform(1235, 0, n));  // another seed, other numbers
  double sum = 0.0;
  for (const float x : a) {
    ASSERT_GT(x, 0.0F);
    ASSERT_LE(x, 1.0F);
    sum += x;
  }
  // U(0,1]: mean 1/2, variance 1/12; the sample mean is within 5 sigma of 1/2.
  const double sigma = std::sqrt(1.0 / 12.0 / static_cast<double>(n));
  EXPECT_NEAR(sum / static_cast<double>(n), 0.5, 5 * sigma);
}

// cuRAND's own host generator, directly: the reference for Note [Philox on the host].
struct CuRandHost {
  curandGenerator_t g = nullptr;
  CuRandHost(std::uint64_t seed, std::uint64_t offset) {
    EXPECT_EQ(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10),
              CURAND_STATUS_SUCCESS);
    EXPECT_EQ(curandSetPseudoRandomGeneratorSeed(g, seed), CURAND_STATUS_SUCCESS);
    EXPECT_EQ(curandSetGeneratorOffset(g, offset), CURAND_STATUS_SUCCESS);
  }
  ~CuRandHost() { curandDestroyGenerator(g); }
  std::vector<float> uniform(std::size_t n) {
    std::vector<float> v(n);
    EXPECT_EQ(curandGenerateUniform(g, v.data(), n), CURAND_STATUS_SUCCESS);
    return v;
  }
  std::vector<float> normal(std::size_t n) {
    std::vector<float> v(n);
    EXPECT_EQ(curandGenerateNormal(g, v.data(), n, 0.5F, 2.0F), CURAND_STATUS_SUCCESS);
    return v;
  }
};

// Note [Philox on the host]: the parallel evaluation gives curandGenerateUniform's numbers bit
// for bit - any position (unaligned to the 4-number blocks, past 2^32 blocks), any length
// (no whole block, a partial block at either end, enough blocks to run in parallel).
TEST(CurandGenerator, HostPhiloxEqualsCuRandsHostGenerator) {
  const std::uint64_t seeds[] = {0, 1234, 0xfedcba9876543210ULL};
  const std::uint64_t offsets[] = {
      0, 1, 2, 3, 5, 262143, 262145, 98304ULL * 938 + 7, (1ULL << 34) + 3, 0xffffffffULL * 4 + 2};
  const std::size_t lengths[] = {0, 1, 2, 3, 5, 9, 4099, 300001};
  for (const std::uint64_t seed : seeds)
    for (const std::uint64_t offset : offsets)
      for (const std::size_t n : lengths) {
        std::vector<float> got(n);
        detail::philox_uniform_host(seed, offset, got.data(), n);
        ASSERT_EQ(got, CuRandHost(seed, offset).uniform(n))
            << "seed " << seed << " offset " << offset << " n " << n;
      }
}

// Normals from even positions: curandGenerateNormal's bits (Box-Muller pairs (2m, 2m + 1), then
// mean + stddev z), for several means and deviations, in one call and continued.
TEST(CurandGenerator, HostPhiloxNormalsEqualCuRandsHostGenerator) {
  for (const std::uint64_t offset : {0ULL, 2ULL, 6ULL, 262146ULL, (1ULL << 34) + 2})
    for (const auto& [mean, sd] : {std::pair{0.0F, 1.0F}, {0.5F, 2.0F}, {0.5F, 0.05F}}) {
      CuRandHost ref(31, offset);
      std::vector<float> got(100002), more(1000);
      detail::philox_normal_host(31, offset, mean, sd, got.data(), got.size());
      detail::philox_normal_host(31, offset + got.size(), mean, sd, more.data(), more.size());
      std::vector<float> want(got.size()), want_more(more.size());
      ASSERT_EQ(curandGenerateNormal(ref.g, want.data(), want.size(), mean, sd),
                CURAND_STATUS_SUCCESS);
      ASSERT_EQ(curandGenerateNormal(ref.g, want_more.data(), want_more.size(), mean, sd),
                CURAND_STATUS_SUCCESS);
      ASSERT_EQ(got, want) << "offset " << offset << " mean " << mean << " sd " << sd;
      ASSERT_EQ(more, want_more) << "offset " << offset;
    }
}

// The CPU generator's positions: consecutive calls continue the stream, set_offset repositions
// it, normals from an even position continue it by their count, and after a normal() from an
// odd position (cuRAND's host generator) uniform() continues that generator's stream.
TEST(CurandGenerator, CpuStreamPositionsFollowCuRand) {
  detail::CurandGenerator gen(Device::cpu(), 77, 10);
  CuRandHost ref(77, 10);
  std::vector<float> a(1001), b(4096);
  gen.uniform(a.data(), a.size());
  gen.uniform(b.data(), b.size());
  EXPECT_EQ(a, ref.uniform(1001));
  EXPECT_EQ(b, ref.uniform(4096));
  gen.set_offset(123456789);
  CuRandHost moved(77, 123456789);
  gen.uniform(a.data(), a.size());
  EXPECT_EQ(a, moved.uniform(1001));
  std::vector<float> z(2000);
  gen.normal(z.data(), z.size(), 0.5F, 2.0F);  // odd position (123456789 + 1001)
  EXPECT_EQ(z, moved.normal(2000));
  gen.uniform(a.data(), a.size());
  EXPECT_EQ(a, moved.uniform(1001));
  gen.set_offset(4000);  // even: the parallel normals, then uniforms after them
  CuRandHost even(77, 4000);
  gen.normal(z.data(), z.size(), 0.5F, 2.0F);
  EXPECT_EQ(z, even.normal(2000));
  gen.uniform(a.data(), a.size());
  EXPECT_EQ(a, even.uniform(1001));
}

TEST(CurandGeneratorGpu, DeviceMatchesHostBitForBit) {
  CUTRAIN_REQUIRE_GPU();
  const std::size_t n = 1 << 16;
  detail::CurandGenerator gen(Device::cuda(0), 99, 0);
  Buffer d(n * sizeof(float), Device::cuda(0));
  gen.uniform(d.as<float>(), n);
  std::vector<float> back(n);
  copy_bytes(back.data(), Device::cpu(), d.data(), d.device(), d.bytes());
  EXPECT_EQ(back, host_uniform(99, 0, n));
}

}  // namespace
}  // namespace cutrain
