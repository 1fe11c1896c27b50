#pragma once
// Launch-shape arithmetic, host-only, so that it is tested without a GPU
// (tests/kernels/grid_test.cpp).
//
// Note [grid-stride everywhere]: a grid is capped (65 535 blocks for the element-wise launches,
// what stays resident for the streaming ones), so every kernel loops over its work with a grid
// stride - rows, columns and elements beyond the first grid's reach are processed, never skipped
// (a BatchNorm2d over N x H x W, or a batch of 17M rows, goes past 65 535 x 256). The block count
// is computed in 64 bits before it is capped: a count that does not fit 32 bits must not wrap to a
// small grid.

#include <algorithm>
#include <cstddef>

namespace cutrain::kernels {

inline constexpr unsigned kMaxGridBlocks = 65535;

// Blocks of `block` threads that cover `work_items`, at most `cap` (and at least 1).
constexpr unsigned capped_blocks(std::size_t work_items, unsigned block,
                                 unsigned cap = kMaxGridBlocks) {
  const std::size_t needed = work_items / block + (work_items % block != 0 ? 1 : 0);
  return static_cast<unsigned>(std::clamp<std::size_t>(needed, 1, cap));
}

}  // namespace cutrain::kernels
