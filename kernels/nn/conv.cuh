#pragma once
// Convolution as im2col + GEMM (Caffe's lowering, batched), shared by the CUDA kernels and the
// CPU loops. Activations are NCHW: sample n, channel c, row h, column w at ((n C + c) H + h) W + w.
//
// Note [convolution as one GEMM per chunk]: a chunk of nb samples is lowered to
//   col [K, nb P],  K = C kh kw (input channel, kernel row, kernel column),  P = Ho Wo,
//   col[k, n P + p] = x[n, c, ho sh - ph + i dh, wo sw - pw + j dw]  (0 outside the input),
// so that the whole chunk's convolution is ONE GEMM, Y[Co, nb P] = W[Co, K] col (torch's weight
// [Co, C, kh, kw] is W row-major as it is stored), and the backward pass two:
//   dW[Co, K] += dY[Co, nb P] col^T      (chunks in order: a fixed summation order)
//   dcol[K, nb P] = W^T dY,   dx = col2im(dcol)
// Y and dY are the output's NCHW values permuted to [Co, nb P] (to_nchw / from_nchw below).
// col2im is a gather - each input element sums the dcol entries that read it, kernel row then
// column ascending - so it needs no atomics and gives the same bits on every run and backend.
// Large GEMMs (n = nb P in the tens of thousands) are what cuBLAS and OpenBLAS run best; the
// chunk bounds the lowered buffer's memory (Conv2d::chunk_samples).

#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

// One convolution's (or pooling window's) shapes. Pooling uses c == co and d == 1.
struct ConvGeometry {
  std::int64_t c = 1, h = 1, w = 1;     // input channels, height, width
  std::int64_t co = 1, ho = 1, wo = 1;  // output channels, height, width
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  CUTRAIN_HD std::int64_t k() const { return c * kh * kw; }
  CUTRAIN_HD std::int64_t p() const { return ho * wo; }
  CUTRAIN_HD std::int64_t in_plane() const { return h * w; }
};

// PyTorch's output size: floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1.
CUTRAIN_HD std::int64_t conv_output_size(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                                         std::int64_t pad, std::int64_t dilation) {
  const std::int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// col[i] for i in [0, K nb P): the lowered chunk (x: the chunk's first sample).
CUTRAIN_HD float im2col_value(const ConvGeometry& g, const float* x, std::int64_t nb,
                              std::int64_t i) {
  const std::int64_t cols = nb * g.p();
  const std::int64_t k = i / cols, m = i % cols;
  const std::int64_t n = m / g.p(), p = m % g.p();
  const std::int64_t c = k / (g.kh * g.kw), r = k % (g.kh * g.kw);
  const std::int64_t hi = (p / g.wo) * g.sh - g.ph + (r / g.kw) * g.dh;
  const std::int64_t wi = (p % g.wo) * g.sw - g.pw + (r % g.kw) * g.dw;
  if (hi < 0 || hi >= g.h || wi < 0 || wi >= g.w) return 0.0F;
  return x[((n * g.c + c) * g.h + hi) * g.w + wi];
}

// dx[i] for i in [0, nb C H W): the sum of the dcol entries im2col read x[i] into.
CUTRAIN_HD float col2im_value(const ConvGeometry& g, const float* dcol, std::int64_t nb,
                              std::int64_t i) {
  const std::int64_t cols = nb * g.p();
  const std::int64_t wi = i % g.w, hi = (i / g.w) % g.h, c = (i / g.in_plane()) % g.c,
                     n = i / (g.in_plane() * g.c);
  float sum = 0.0F;
  for (std::int64_t ki = 0; ki < g.kh; ++ki) {
    const std::int64_t hs = hi + g.ph - ki * g.dh;  // = ho sh
    if (hs < 0 || hs % g.sh != 0 || hs / g.sh >= g.ho) continue;
    for (std::int64_t kj = 0; kj < g.kw; ++kj) {
      const std::int64_t ws = wi + g.pw - kj * g.dw;
      if (ws < 0 || ws % g.sw != 0 || ws / g.sw >= g.wo) continue;
      const std::int64_t k = (c * g.kh + ki) * g.kw + kj;
      sum += dcol[k * cols + n * g.p() + (hs / g.sh) * g.wo + ws / g.sw];
    }
  }
  return sum;
}

// The GEMM's [Co, nb P] layout and NCHW: element i of the NCHW chunk [nb, Co, P] is entry
// (co, n P + p) of the GEMM's matrix.
CUTRAIN_HD std::int64_t gemm_index_of_nchw(const ConvGeometry& g, std::int64_t nb,
                                           std::int64_t i) {
  const std::int64_t p = i % g.p(), co = (i / g.p()) % g.co, n = i / (g.p() * g.co);
  return co * (nb * g.p()) + n * g.p() + p;
}

}  // namespace cutrain::rules
