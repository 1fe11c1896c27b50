#pragma once
// A bias gradient's column sums over the batch, shared by the CUDA kernel (kernels/nn/nn.cu) and
// the CPU loop (src/nn/backend.cpp).

#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

// Note [column sums in chunks]: a bias gradient sums a column over the batch. One GPU thread
// per column left most of the GPU idle (a 512-wide layer is 512 threads, each adding 128-256
// rows one after another), so the rows are cut into kColumnChunks fixed ranges: the kernel
// gives each range of each column its own thread, and the CPU loop walks the same ranges, so
// both add the same numbers in the same order (Note [bit-identical backends]).
inline constexpr int kColumnChunks = 8;

CUTRAIN_HD std::int64_t column_chunk_begin(int k, std::int64_t rows) {
  return rows * k / kColumnChunks;
}

// Rows [begin, end) of one column, in double.
CUTRAIN_HD double column_chunk_sum(const float* x, std::int64_t begin, std::int64_t end,
                                   std::int64_t stride) {
  double s = 0.0;
  for (std::int64_t r = begin; r < end; ++r) s += x[r * stride];
  return s;
}

// The chunk sums combined in chunk order.
CUTRAIN_HD float combine_column_chunks(const double* chunks) {
  double s = 0.0;
  for (int k = 0; k < kColumnChunks; ++k) s += chunks[k];
  return static_cast<float>(s);
}

// Sum over rows of one column (bias gradients), in double, chunk by chunk.
CUTRAIN_HD float column_sum(const float* x, std::int64_t rows, std::int64_t stride) {
  double chunks[kColumnChunks];
  for (int k = 0; k < kColumnChunks; ++k)
    chunks[k] =
        column_chunk_sum(x, column_chunk_begin(k, rows), column_chunk_begin(k + 1, rows), stride);
  return combine_column_chunks(chunks);
}

}  // namespace cutrain::rules
