// Note [Philox on the host] (philox_host.hpp), through the rule the kernels share.
#include "kernels/common/philox.cuh"  // first: it sets cuRAND's QUALIFIERS

#include "src/rng/philox_host.hpp"

namespace cutrain::detail {

namespace {

// Calls `block(b, out4)` for the Philox blocks holding numbers [position, position + n) and
// writes each number to out[p - position]: the partial blocks at either end one lane at a time,
// the whole blocks between them in parallel, each written straight to its 4 outputs (out + 4 j
// - head, any alignment).
template <class Block>
void fill_blocks(std::uint64_t position, float* out, std::size_t n, const Block& block) {
  if (n == 0) return;
  const std::uint64_t end = position + n;
  const std::uint64_t first_whole = (position + 3) / 4, end_whole = end / 4;
  float lanes[4];
  auto one_by_one = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t p = from; p < to; ++p) {
      block(p / 4, lanes);
      out[p - position] = lanes[p % 4];
    }
  };
  if (first_whole >= end_whole) {  // no whole block: at most two partial ones
    one_by_one(position, end);
    return;
  }
  one_by_one(position, first_whole * 4);
  float* whole = out + (first_whole * 4 - position);
  const auto blocks = static_cast<std::ptrdiff_t>(end_whole - first_whole);
#pragma omp parallel for schedule(static) if (blocks >= (1 << 12))
  for (std::ptrdiff_t j = 0; j < blocks; ++j)
    block(first_whole + static_cast<std::uint64_t>(j), whole + 4 * j);
  one_by_one(end_whole * 4, end);
}

}  // namespace

void philox_uniform_host(std::uint64_t seed, std::uint64_t position, float* out, std::size_t n) {
  fill_blocks(position, out, n,
              [seed](std::uint64_t b, float* out4) { rules::philox_uniform4(seed, b, out4); });
}

void philox_normal_host(std::uint64_t seed, std::uint64_t position, float mean, float stddev,
                        float* out, std::size_t n) {
  fill_blocks(position, out, n, [=](std::uint64_t b, float* out4) {
    // cuRAND's Box-Muller on the block's two pairs (lanes 0-1 and 2-3), then mean + stddev z.
    const uint4 r = rules::philox_block(seed, b);
    const float2 z01 = _curand_box_muller(r.x, r.y), z23 = _curand_box_muller(r.z, r.w);
    out4[0] = z01.x * stddev + mean;
    out4[1] = z01.y * stddev + mean;
    out4[2] = z23.x * stddev + mean;
    out4[3] = z23.y * stddev + mean;
  });
}

}  // namespace cutrain::detail
