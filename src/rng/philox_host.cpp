// Note [Philox on the host] (philox_host.hpp), through the rule the kernels share.
#include "kernels/common/philox.cuh"  // first: it sets cuRAND's QUALIFIERS

#include "src/rng/philox_host.hpp"

namespace cutrain::detail {

void philox_uniform_host(std::uint64_t seed, std::uint64_t position, float* out, std::size_t n) {
  if (n == 0) return;
  // The partial blocks at either end one lane at a time; the whole blocks between them in
  // parallel, each written straight to its 4 outputs (out + 4 j - head, any alignment).
  const std::uint64_t end = position + n;
  const std::uint64_t first_whole = (position + 3) / 4, end_whole = end / 4;
  float lanes[4];
  auto one_by_one = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t p = from; p < to; ++p) {
      rules::philox_uniform4(seed, p / 4, lanes);
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
    rules::philox_uniform4(seed, first_whole + static_cast<std::uint64_t>(j), whole + 4 * j);
  one_by_one(end_whole * 4, end);
}

}  // namespace cutrain::detail
