// The cuRAND RAII owner. The host generator runs without a GPU (also in CPU-only builds).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cutrain/buffer.hpp"
#include "src/rng/curand_generator.hpp"
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
