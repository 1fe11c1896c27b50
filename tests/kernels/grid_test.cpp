// Launch-shape arithmetic (kernels/common/grid.hpp, Note [grid-stride everywhere]), on the host:
// a grid covers its work or is capped, and a block count beyond 32 bits is capped, not wrapped.
#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/common/grid.hpp"

namespace cutrain::kernels {
namespace {

TEST(Grid, CappedBlocksCoverTheWorkOrTheCap) {
  EXPECT_EQ(capped_blocks(0, 256), 1U);  // a launch has at least one block
  EXPECT_EQ(capped_blocks(1, 256), 1U);
  EXPECT_EQ(capped_blocks(256, 256), 1U);
  EXPECT_EQ(capped_blocks(257, 256), 2U);
  EXPECT_EQ(capped_blocks(std::size_t{65535} * 256, 256), 65535U);
  EXPECT_EQ(capped_blocks(std::size_t{65535} * 256 + 1, 256), 65535U);  // then grid-stride
  EXPECT_EQ(capped_blocks(5000, 256, 8), 8U);
  // 2^32 + 1 blocks' worth: a 32-bit count would wrap to 1 block (and, without the grid-stride
  // loops, leave all but 256 items undone); the 64-bit count is capped instead.
  const std::size_t huge = ((std::size_t{1} << 32) + 1) * 256;
  EXPECT_EQ(static_cast<unsigned>((huge + 255) / 256), 1U);  // what the old arithmetic did
  EXPECT_EQ(capped_blocks(huge, 256), 65535U);
  EXPECT_EQ(capped_blocks(huge, 256, 1024), 1024U);
}

}  // namespace
}  // namespace cutrain::kernels
