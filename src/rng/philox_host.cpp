// Note [Philox on the host] (philox_host.hpp). cuRAND's device-API headers, compiled for the
// host: QUALIFIERS must be set before the first cuRAND device header of this file.
#define QUALIFIERS static inline
#include <curand_kernel.h>

#include "src/rng/philox_host.hpp"

namespace cutrain::detail {
namespace {

// The generator's block-to-counter layout (Note [Philox on the host]).
constexpr std::uint64_t kSubsequences = 65536;

// The 4 floats of block b.
inline void block_uniforms(uint2 key, std::uint64_t b, float out[4]) {
  const std::uint64_t k = b / kSubsequences;
  const uint4 counter = {static_cast<unsigned>(k), static_cast<unsigned>(k >> 32),
                         static_cast<unsigned>(b % kSubsequences), 0U};
  const uint4 r = curand_Philox4x32_10(counter, key);
  out[0] = _curand_uniform(r.x);
  out[1] = _curand_uniform(r.y);
  out[2] = _curand_uniform(r.z);
  out[3] = _curand_uniform(r.w);
}

}  // namespace

void philox_uniform_host(std::uint64_t seed, std::uint64_t position, float* out, std::size_t n) {
  if (n == 0) return;
  const uint2 key = {static_cast<unsigned>(seed), static_cast<unsigned>(seed >> 32)};
  // The partial blocks at either end one lane at a time; the whole blocks between them in
  // parallel, each written straight to its 4 outputs (out + 4 j - head, any alignment).
  const std::uint64_t end = position + n;
  const std::uint64_t first_whole = (position + 3) / 4, end_whole = end / 4;
  float lanes[4];
  if (first_whole >= end_whole) {  // no whole block: at most two partial ones
    for (std::uint64_t p = position; p < end; ++p) {
      block_uniforms(key, p / 4, lanes);
      out[p - position] = lanes[p % 4];
    }
    return;
  }
  for (std::uint64_t p = position; p < first_whole * 4; ++p) {
    block_uniforms(key, p / 4, lanes);
    out[p - position] = lanes[p % 4];
  }
  float* whole = out + (first_whole * 4 - position);
  const auto blocks = static_cast<std::ptrdiff_t>(end_whole - first_whole);
#pragma omp parallel for schedule(static) if (blocks >= (1 << 12))
  for (std::ptrdiff_t j = 0; j < blocks; ++j)
    block_uniforms(key, first_whole + static_cast<std::uint64_t>(j), whole + 4 * j);
  for (std::uint64_t p = end_whole * 4; p < end; ++p) {
    block_uniforms(key, p / 4, lanes);
    out[p - position] = lanes[p % 4];
  }
}

}  // namespace cutrain::detail
