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
// Large GEMMs (n = nb P in the tens of thousands) are what cuBLAS runs best; the chunk bounds the
// lowered buffer's memory (Conv2d::chunk_samples). The CPU lowers one sample per thread at a time
// (Note [convolution per sample on the CPU], src/nn/conv_backend.hpp): the same functions, nb = 1.

#include <cstdint>

#include "cutrain/hd.hpp"
#include "kernels/common/half.cuh"

namespace cutrain::rules {

// One convolution's (or pooling window's) shapes. Pooling uses c == co and d == 1.
//
// Note [grouped convolution]: with groups G (torch's `groups`; depthwise when G = C), input
// channels [i C/G, (i + 1) C/G) feed output channels [i Co/G, (i + 1) Co/G) alone; the weight is
// [Co, C/G, kh, kw], so output channel o's filter is row o of W [Co, kg] with kg = C/G kh kw. The
// lowering is unchanged - col [K, nb P] over all C channels, whose rows for group i are the
// contiguous block [i kg, (i + 1) kg) - and each GEMM becomes G over blocks (one strided-batched
// call, backend::gemm_strided):
//   Y_i [Co/G, nb P] = W_i [Co/G, kg] col_i [kg, nb P]
//   dW_i = dY_i col_i^T,   dcol_i = W_i^T dY_i
// The CPU's per-sample paths run each group as a convolution of its own (one_group below) over the
// group's channel slices, which are contiguous within a sample - but a depthwise one, whose
// groups are single channels, in one pass (Note [depthwise convolution on the CPU]).
struct ConvGeometry {
  std::int64_t c = 1, h = 1, w = 1;     // input channels, height, width
  std::int64_t co = 1, ho = 1, wo = 1;  // output channels, height, width
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  std::int64_t groups = 1;  // Note [grouped convolution]; divides c and co
  // The lowered rows: all input channels' taps (the im2col matrix's height).
  CUTRAIN_HD std::int64_t k() const { return c * kh * kw; }
  // One output channel's filter: its group's input channels' taps (a weight row).
  CUTRAIN_HD std::int64_t kg() const { return c / groups * kh * kw; }
  CUTRAIN_HD std::int64_t p() const { return ho * wo; }
  CUTRAIN_HD std::int64_t in_plane() const { return h * w; }
};

// One group of a grouped convolution as a convolution of its own: C/G input and Co/G output
// channels, the same spatial shape.
CUTRAIN_HD ConvGeometry one_group(ConvGeometry g) {
  g.c /= g.groups;
  g.co /= g.groups;
  g.groups = 1;
  return g;
}

// PyTorch's output size: floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1.
CUTRAIN_HD std::int64_t conv_output_size(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                                         std::int64_t pad, std::int64_t dilation) {
  const std::int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// The output columns [lo, end) whose input column wo sw + off lies inside [0, W) - off = j dw -
// pw for kernel column j -, so that a row walk is zeros, the columns, zeros (im2col_row,
// col2im_plane, the CPU's depthwise pass).
struct ColumnSpan {
  std::int64_t lo, end;
};
CUTRAIN_HD ColumnSpan column_span(const ConvGeometry& g, std::int64_t off) {
  std::int64_t lo = off < 0 ? (-off + g.sw - 1) / g.sw : 0;
  std::int64_t end = g.w - off <= 0 ? 0 : (g.w - off + g.sw - 1) / g.sw;
  end = end < g.wo ? end : g.wo;
  lo = lo < end ? lo : end;
  return {lo, end};
}

// Row k of col for one sample n: out[p] = x[n, c, ho sh - ph + i dh, wo sw - pw + j dw], p =
// ho Wo + wo (the CPU loop; no division per element).
CUTRAIN_HD void im2col_row(const ConvGeometry& g, const float* x, std::int64_t n, std::int64_t k,
                           float* out) {
  const std::int64_t c = k / (g.kh * g.kw), r = k % (g.kh * g.kw);
  const std::int64_t i = r / g.kw, j = r % g.kw;
  const float* plane = x + (n * g.c + c) * g.in_plane();
  for (std::int64_t ho = 0; ho < g.ho; ++ho) {
    const std::int64_t hi = ho * g.sh - g.ph + i * g.dh;
    float* o = out + ho * g.wo;
    if (hi < 0 || hi >= g.h) {
      for (std::int64_t wo = 0; wo < g.wo; ++wo) o[wo] = 0.0F;
      continue;
    }
    // wi = wo sw + off is inside [0, W) for wo in [lo, hi): zeros, a strided copy, zeros.
    const float* row = plane + hi * g.w;
    const std::int64_t off = j * g.dw - g.pw;
    const ColumnSpan span = column_span(g, off);
    const std::int64_t lo = span.lo, end = span.end;
    for (std::int64_t wo = 0; wo < lo; ++wo) o[wo] = 0.0F;
    if (g.sw == 1) {  // contiguous: the copy g++ vectorizes
      for (std::int64_t wo = lo; wo < end; ++wo) o[wo] = row[wo + off];
    } else {
      for (std::int64_t wo = lo; wo < end; ++wo) o[wo] = row[wo * g.sw + off];
    }
    for (std::int64_t wo = end; wo < g.wo; ++wo) o[wo] = 0.0F;
  }
}

// A convolution's (or pooling window's: co == c, dilation 1) geometry for a [c, h, w] input,
// the output size PyTorch's.
CUTRAIN_HD ConvGeometry conv_geometry(std::int64_t c, std::int64_t h, std::int64_t w,
                                      std::int64_t co, std::int64_t kh, std::int64_t kw,
                                      std::int64_t sh, std::int64_t sw, std::int64_t ph,
                                      std::int64_t pw, std::int64_t dh, std::int64_t dw,
                                      std::int64_t groups = 1) {
  ConvGeometry g{c, h, w, co, 0, 0, kh, kw, sh, sw, ph, pw, dh, dw, groups};
  g.ho = conv_output_size(h, kh, sh, ph, dh);
  g.wo = conv_output_size(w, kw, sw, pw, dw);
  return g;
}

// col[i] for i in [0, K nb P): the lowered chunk (x: the chunk's first sample); one element of
// im2col_row (the GPU's lane). Both copy, so both give the same values.
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

// The plane dx[n, c] (the CPU loop): zeroed, then for kernel row i, column j ascending, every
// dcol entry that read an element added to it - per element the additions col2im_value makes, in
// its order, so the same bits.
CUTRAIN_HD void col2im_plane(const ConvGeometry& g, const float* dcol, std::int64_t nb,
                             std::int64_t n, std::int64_t c, float* dx,
                             Store store = Store::kExact) {
  const std::int64_t cols = nb * g.p();
  for (std::int64_t e = 0; e < g.in_plane(); ++e) dx[e] = 0.0F;
  for (std::int64_t i = 0; i < g.kh; ++i)
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const float* row = dcol + ((c * g.kh + i) * g.kw + j) * cols + n * g.p();
      const std::int64_t off = j * g.dw - g.pw;
      const ColumnSpan span = column_span(g, off);
      const std::int64_t lo = span.lo, end = span.end;
      for (std::int64_t ho = 0; ho < g.ho; ++ho) {
        const std::int64_t hi = ho * g.sh - g.ph + i * g.dh;
        if (hi < 0 || hi >= g.h) continue;
        const std::int64_t at = hi * g.w + off;  // + wo sw: inside the row for wo in [lo, end)
        const float* in = row + ho * g.wo;
        if (g.sw == 1) {  // contiguous: the loop g++ vectorizes
          for (std::int64_t wo = lo; wo < end; ++wo) dx[at + wo] += in[wo];
        } else {
          for (std::int64_t wo = lo; wo < end; ++wo) dx[at + wo * g.sw] += in[wo];
        }
      }
    }
  // Note [16-bit stores]: the sums, rounded once each (a loop per format, so each vectorizes).
  if (store == Store::kBf16)
    for (std::int64_t e = 0; e < g.in_plane(); ++e) dx[e] = stored(Store::kBf16, dx[e]);
  if (store == Store::kFp16)
    for (std::int64_t e = 0; e < g.in_plane(); ++e) dx[e] = stored(Store::kFp16, dx[e]);
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
CUTRAIN_HD std::int64_t gemm_index_of_nchw(const ConvGeometry& g, std::int64_t nb, std::int64_t i) {
  const std::int64_t p = i % g.p(), co = (i / g.p()) % g.co, n = i / (g.p() * g.co);
  return co * (nb * g.p()) + n * g.p() + p;
}

}  // namespace cutrain::rules
