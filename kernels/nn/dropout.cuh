#pragma once
// Note [dropout from the counter]: Dropout's forward takes mask element i from number
// `position + i` of its layer's Philox stream - exactly what curandGenerateUniform would write
// at that offset (kernels/common/philox.cuh) - and applies it in the same pass: no array of
// uniforms, no generator object, one launch (two before: cuRAND's generate, then the mask). The
// unit of work is one Philox block of 4 numbers; dropout_block handles the lanes of block b
// that fall in [position, position + n), so a stream position that is not a multiple of 4
// (after a partial batch) still gives every element its own number. y is stored as `store` says
// (Note [16-bit stores], kernels/common/half.cuh); the mask exactly.
#include "kernels/common/philox.cuh"  // first: it sets cuRAND's QUALIFIERS

#include <cstddef>
#include <cstdint>

#include "kernels/common/half.cuh"
#include "kernels/nn/activation.cuh"

namespace cutrain::rules {

CUTRAIN_HD void dropout_block(std::uint64_t seed, std::uint64_t position, std::size_t n,
                              std::uint64_t block, float p, float* mask, const float* x, float* y,
                              Store store) {
  float u[4];
  philox_uniform4(seed, block, u);
  const std::uint64_t first = block * 4;
  if (first >= position && first + 4 <= position + n) {  // a whole block: no lane checks
    const std::size_t i = first - position;
    for (int lane = 0; lane < 4; ++lane) {
      const float xi = x[i + lane];
      y[i + lane] = stored(store, dropout_forward(u[lane], xi, p));
      mask[i + lane] = u[lane];
    }
    return;
  }
  for (int lane = 0; lane < 4; ++lane) {
    const std::uint64_t at = first + static_cast<std::uint64_t>(lane);
    if (at < position || at - position >= n) continue;
    const std::size_t i = at - position;
    const float xi = x[i];
    y[i] = stored(store, dropout_forward(u[lane], xi, p));
    mask[i] = u[lane];
  }
}

// The Philox blocks that hold numbers [position, position + n), n > 0.
CUTRAIN_HD std::uint64_t dropout_first_block(std::uint64_t position) {
  return position / 4;
}
CUTRAIN_HD std::uint64_t dropout_blocks(std::uint64_t position, std::size_t n) {
  return (position + n - 1) / 4 - position / 4 + 1;
}

}  // namespace cutrain::rules
