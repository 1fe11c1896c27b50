// Layer kernels: thin launches around the rules in kernels/nn/*.cuh.
//
// Launch shapes: element-wise maps are grid-stride loops over 16-byte vectors when every array
// is 16-byte aligned (layer buffers and arena spans are), then a scalar tail, each lane calling
// the same rule as the CPU loop - so the vector path changes no bits; tests/kernels/sass_check.py
// holds them to 128-bit loads and stores. The bias gradient's column sums split the rows into
// fixed ranges (Note [column sums in chunks]); BatchNorm1d and 2d share the per-channel
// kernels of kernels/nn/conv.cu (Note [channel sums in lanes]); the losses are in
// kernels/nn/loss.cu.
#include "kernels/nn/dropout.cuh"  // first: it sets cuRAND's QUALIFIERS (kernels/common/philox.cuh)

#include "kernels/common/grid_stride.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"
#include "kernels/data/augment.cuh"
#include "kernels/nn/column_sum.cuh"
#include "kernels/nn/nn.hpp"

namespace cutrain::kernels {
namespace {

__global__ void activation_forward_kernel(rules::Activation a, float slope,
                                          const float* __restrict__ x, float* __restrict__ y,
                                          std::size_t n, bool vec) {
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = global_id(); i < n4; i += grid_stride()) {
    const Vec4 xv = load4(x, i);
    Vec4 yv;
#pragma unroll
    for (int k = 0; k < 4; ++k) yv.v[k] = rules::activation_forward(a, xv.v[k], slope);
    store4(y, i, yv);
  }
  for (std::size_t i = n4 * 4 + global_id(); i < n; i += grid_stride())
    y[i] = rules::activation_forward(a, x[i], slope);
}

__global__ void activation_backward_kernel(rules::Activation a, float slope,
                                           const float* __restrict__ x, const float* __restrict__ y,
                                           const float* __restrict__ dy, float* __restrict__ dx,
                                           std::size_t n, bool vec) {
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = global_id(); i < n4; i += grid_stride()) {
    const Vec4 xv = load4(x, i), yv = load4(y, i), dyv = load4(dy, i);
    Vec4 dxv;
#pragma unroll
    for (int k = 0; k < 4; ++k)
      dxv.v[k] = rules::activation_backward(a, xv.v[k], yv.v[k], dyv.v[k], slope);
    store4(dx, i, dxv);
  }
  for (std::size_t i = n4 * 4 + global_id(); i < n; i += grid_stride())
    dx[i] = rules::activation_backward(a, x[i], y[i], dy[i], slope);
}

// vec: cols % 4 == 0 as well, so a vector never straddles two rows and its 4 biases are one
// aligned vector too.
__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias,
                                std::int64_t rows, std::int64_t cols, bool vec) {
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  const std::size_t n4 = vec ? n / 4 : 0, cols4 = static_cast<std::size_t>(cols) / 4;
  for (std::size_t i = global_id(); i < n4; i += grid_stride()) {
    Vec4 yv = load4(y, i);
    const Vec4 bv = load4(bias, i % cols4);
#pragma unroll
    for (int k = 0; k < 4; ++k) yv.v[k] += bv.v[k];
    store4(y, i, yv);
  }
  for (std::size_t i = n4 * 4 + global_id(); i < n; i += grid_stride()) y[i] += bias[i % cols];
}

// Note [column sums in chunks]: a block is 32 adjacent columns x kColumnChunks row ranges; a
// warp holds one range of 32 columns, so each row it reads is one coalesced 128-byte line.
constexpr int kColumnsPerBlock = 32;
static_assert(kColumnsPerBlock * rules::kColumnChunks == kBlock);

__global__ void __launch_bounds__(kBlock)
    column_sum_kernel(const float* __restrict__ x, std::int64_t rows, std::int64_t cols,
                      float* __restrict__ out) {
  __shared__ double chunks[kColumnsPerBlock][rules::kColumnChunks];
  const int lane = static_cast<int>(threadIdx.x) % kColumnsPerBlock;
  const int k = static_cast<int>(threadIdx.x) / kColumnsPerBlock;
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kColumnsPerBlock + lane;
  if (c < cols)
    chunks[lane][k] = rules::column_chunk_sum(x + c, rules::column_chunk_begin(k, rows),
                                              rules::column_chunk_begin(k + 1, rows), cols);
  __syncthreads();
  if (k == 0 && c < cols) out[c] = rules::combine_column_chunks(chunks[lane]);
}

// x and y may alias (an in-place forward): no __restrict__ on them.
// Note [dropout from the counter]: a thread per Philox block of a segment (Note [replica rows]:
// the whole batch in one process, a row of it on rank r of W). vec: the segment's stream position
// is a multiple of 4 and its arrays are 16-byte aligned, so block j is vector j of the segment.
// Each vector is read whole before it is written, so x and y may alias.
// The position is read from device memory (Note [forward count in device memory]), so the grid
// covers the most Philox blocks any position can touch, length / 4 + 2 per segment, and each
// thread finds the count for the position it read. One segment divides nothing.
__global__ void dropout_forward_kernel(std::uint64_t seed, const std::uint64_t* count,
                                       std::uint64_t stride, rules::DropoutRows rows, float* mask,
                                       const float* x, float* y, float p, rules::Store store,
                                       bool aligned) {
  const std::uint64_t base = *count * stride + rows.first;
  const std::size_t per_row = rows.length / 4 + 2;
  for (std::size_t t = global_id(); t < rows.rows * per_row; t += grid_stride()) {
    const std::size_t row = rows.rows == 1 ? 0 : t / per_row;
    const std::uint64_t j = t - row * per_row;
    const std::uint64_t position = base + row * rows.pitch;
    if (j >= rules::dropout_blocks(position, rows.length)) continue;
    const std::size_t at = row * rows.length;
    const std::size_t n = rows.length;
    const bool vec = aligned && position % 4 == 0 && at % 4 == 0;
    if (vec && (j + 1) * 4 <= n) {
      Vec4 u;
      rules::philox_uniform4(seed, rules::dropout_first_block(position) + j, u.v);
      const Vec4 xv = load4(x + at, j);
      Vec4 yv;
      for (int k = 0; k < 4; ++k)
        yv.v[k] = rules::stored(store, rules::dropout_forward(u.v[k], xv.v[k], p));
      store4(mask + at, j, u);
      store4(y + at, j, yv);
    } else {
      rules::dropout_block(seed, position, n, rules::dropout_first_block(position) + j, p,
                           mask + at, x + at, y + at, store);
    }
  }
}

// x and y may alias (rounding in place): each vector is read whole before it is written.
__global__ void round_half_kernel(rules::Half kind, const float* x, float* y, std::size_t n,
                                  bool vec) {
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = global_id(); i < n4; i += grid_stride()) {
    const Vec4 xv = load4(x, i);
    Vec4 yv;
#pragma unroll
    for (int k = 0; k < 4; ++k) yv.v[k] = rules::round_half(kind, xv.v[k]);
    store4(y, i, yv);
  }
  for (std::size_t i = n4 * 4 + global_id(); i < n; i += grid_stride())
    y[i] = rules::round_half(kind, x[i]);
}

// Note [16-bit compute copy]: y[i] = the 16-bit value h[i] as a float (exact). vec: four at a
// time, h 8-byte and y 16-byte aligned.
__global__ void widen_half_kernel(rules::Half kind, const std::uint16_t* __restrict__ h,
                                  float* __restrict__ y, std::size_t n, bool vec) {
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = global_id(); i < n4; i += grid_stride()) {
    const uint2 packed = reinterpret_cast<const uint2*>(h)[i];
    Vec4 yv;
    yv.v[0] = rules::from_half(kind, static_cast<std::uint16_t>(packed.x & 0xFFFFU));
    yv.v[1] = rules::from_half(kind, static_cast<std::uint16_t>(packed.x >> 16));
    yv.v[2] = rules::from_half(kind, static_cast<std::uint16_t>(packed.y & 0xFFFFU));
    yv.v[3] = rules::from_half(kind, static_cast<std::uint16_t>(packed.y >> 16));
    store4(y, i, yv);
  }
  for (std::size_t i = n4 * 4 + global_id(); i < n; i += grid_stride())
    y[i] = rules::from_half(kind, h[i]);
}

struct MultiplyOp {
  rules::Store store;  // Note [16-bit stores]
  __device__ float operator()(float a, float b) const { return rules::stored(store, a * b); }
};
struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MeanOfTwoOp {  // Note [test-time flips]
  __device__ float operator()(float a, float b) const { return rules::mean_of_two(a, b); }
};

// out[i] = op(a[i], b[i]). No __restrict__: out may be a or b (a residual's dx += dy in place);
// each element is read before it is written, by the same thread.
template <class Op>
__global__ void binary_kernel(Op op, const float* a, const float* b, float* out, std::size_t n,
                              bool vec) {
  const std::size_t n4 = vec ? n / 4 : 0;
  for (std::size_t i = global_id(); i < n4; i += grid_stride()) {
    const Vec4 av = load4(a, i), bv = load4(b, i);
    Vec4 ov;
#pragma unroll
    for (int k = 0; k < 4; ++k) ov.v[k] = op(av.v[k], bv.v[k]);
    store4(out, i, ov);
  }
  for (std::size_t i = n4 * 4 + global_id(); i < n; i += grid_stride()) out[i] = op(a[i], b[i]);
}

}  // namespace

void launch_activation_forward(rules::Activation a, float slope, const float* x, float* y,
                               std::size_t n, NativeStream stream) {
  CUTRAIN_LAUNCH_VEC(activation_forward_kernel, n, a, slope, x, y, n, aligned16(x, y));
}
void launch_activation_backward(rules::Activation a, float slope, const float* x, const float* y,
                                const float* dy, float* dx, std::size_t n, NativeStream stream) {
  CUTRAIN_LAUNCH_VEC(activation_backward_kernel, n, a, slope, x, y, dy, dx, n,
                     aligned16(x, y, dy, dx));
}
void launch_add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                     NativeStream stream) {
  const auto n = static_cast<std::size_t>(rows * cols);
  CUTRAIN_LAUNCH_VEC(add_bias_kernel, n, y, bias, rows, cols, cols % 4 == 0 && aligned16(y, bias));
}
void launch_column_sum(const float* x, std::int64_t rows, std::int64_t cols, float* out,
                       NativeStream stream) {
  if (cols == 0) return;
  const auto blocks = static_cast<unsigned>((cols + kColumnsPerBlock - 1) / kColumnsPerBlock);
  column_sum_kernel<<<blocks, kBlock, 0, stream>>>(x, rows, cols, out);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_dropout_forward(std::uint64_t seed, const std::uint64_t* count, std::uint64_t stride,
                            const rules::DropoutRows& rows, float* mask, const float* x, float* y,
                            std::size_t n, float p, rules::Store store, NativeStream stream) {
  if (n == 0) return;
  CUTRAIN_LAUNCH(dropout_forward_kernel, rows.rows * (rows.length / 4 + 2), seed, count, stride,
                 rows, mask, x, y, p, store, aligned16(mask, x, y));
}
__global__ void count_forward_kernel(std::uint64_t* count) {
  ++*count;
}
void launch_count_forward(std::uint64_t* count, NativeStream stream) {
  count_forward_kernel<<<1, 1, 0, stream>>>(count);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_round_half(rules::Half kind, const float* x, float* y, std::size_t n,
                       NativeStream stream) {
  CUTRAIN_LAUNCH_VEC(round_half_kernel, n, kind, x, y, n, aligned16(x, y));
}
void launch_widen_half(rules::Half kind, const std::uint16_t* h, float* y, std::size_t n,
                       NativeStream stream) {
  const bool vec = reinterpret_cast<std::uintptr_t>(h) % 8 == 0 && aligned16(y);
  CUTRAIN_LAUNCH_VEC(widen_half_kernel, n, kind, h, y, n, vec);
}
void launch_multiply(const float* a, const float* b, float* out, std::size_t n, rules::Store store,
                     NativeStream stream) {
  CUTRAIN_LAUNCH_VEC(binary_kernel<MultiplyOp>, n, MultiplyOp{store}, a, b, out, n,
                     aligned16(a, b, out));
}
void launch_add(const float* a, const float* b, float* out, std::size_t n, NativeStream stream) {
  CUTRAIN_LAUNCH_VEC(binary_kernel<AddOp>, n, AddOp{}, a, b, out, n, aligned16(a, b, out));
}
void launch_mean_of_two(const float* a, const float* b, float* out, std::size_t n,
                        NativeStream stream) {
  CUTRAIN_LAUNCH_VEC(binary_kernel<MeanOfTwoOp>, n, MeanOfTwoOp{}, a, b, out, n,
                     aligned16(a, b, out));
}
}  // namespace cutrain::kernels
