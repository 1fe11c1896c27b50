// Note [implicit GEMM on the CPU] (conv_direct_cpu.hpp): stride-1 convolutions as GEMMs whose
// B rows are offsets into zero-padded planes.
#include "src/nn/conv_direct_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX512F__) && !defined(CUTRAIN_CONV_SCALAR)
#include <immintrin.h>
#define CUTRAIN_CONV_AVX512 1
#else
#define CUTRAIN_CONV_AVX512 0
#endif

namespace cutrain::nn::backend::direct {
namespace {

std::int64_t round16(std::int64_t n) {
  return (n + 15) / 16 * 16;
}
std::size_t sz(std::int64_t n) {
  return static_cast<std::size_t>(n);
}

// The padded grids (Note [implicit GEMM on the CPU]).
struct Grids {
  std::int64_t hp, wp;  // the input padded by (ph, pw)
  std::int64_t hq, wq;  // dY padded by ((kh - 1) dh - ph, (kw - 1) dw - pw)
  std::int64_t slack;   // what rows read past a plane's end: (kw - 1) dw
  explicit Grids(const rules::ConvGeometry& g)
      : hp(g.h + 2 * g.ph),
        wp(g.w + 2 * g.pw),
        hq(g.h + (g.kh - 1) * g.dh),
        wq(g.w + (g.kw - 1) * g.dw),
        slack((g.kw - 1) * g.dw) {}
  std::int64_t xp_floats(const rules::ConvGeometry& g) const {
    return round16(g.c * hp * wp + slack);
  }
  std::int64_t grid_floats(const rules::ConvGeometry& g) const { return round16(g.co * g.ho * wp); }
  std::int64_t dyp_floats(const rules::ConvGeometry& g) const {
    return round16(g.co * hq * wq + slack);
  }
  std::int64_t dxg_floats(const rules::ConvGeometry& g) const { return round16(g.c * g.h * wq); }
};

// Rows here are short (28 floats): inline loops, not a memcpy / memset call per row (which g++
// would make of a plain loop, and std::copy is).
void copy_row(const float* __restrict__ src, std::int64_t n, float* __restrict__ dst) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
}
// copy_row storing as `store` says (Note [16-bit stores]): a loop of its own per store, so each
// vectorizes.
void store_row(const float* __restrict__ src, std::int64_t n, float* __restrict__ dst,
               rules::Store store) {
  if (store == rules::Store::kExact) {
    copy_row(src, n, dst);
    return;
  }
  rules::with_store(store, [&](auto s) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) dst[i] = rules::stored(s, src[i]);
  });
}
void zero_row(float* dst, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) dst[i] = 0.0F;
}

// dst [planes, h + top + bottom, w + left + right] = src [planes, h, w] with zeros around, then
// `slack` zeros after the last plane.
void pad_planes(const float* src, std::int64_t planes, std::int64_t h, std::int64_t w,
                std::int64_t top, std::int64_t left, std::int64_t hp, std::int64_t wp,
                std::int64_t slack, float* dst) {
  for (std::int64_t c = 0; c < planes; ++c) {
    float* d = dst + c * hp * wp;
    const float* s = src + c * h * w;
    zero_row(d, top * wp);
    for (std::int64_t r = 0; r < h; ++r) {
      float* row = d + (top + r) * wp;
      zero_row(row, left);
      copy_row(s + r * w, w, row + left);
      zero_row(row + left + w, wp - left - w);
    }
    zero_row(d + (top + h) * wp, (hp - top - h) * wp);
  }
  zero_row(dst + planes * hp * wp, slack);
}

// rows[(c, i, j)] = base + c plane + i dh ld + j dw: the im2col rows of a padded tensor.
std::vector<const float*> offset_rows(const float* base, std::int64_t channels, std::int64_t plane,
                                      const rules::ConvGeometry& g, std::int64_t ld) {
  std::vector<const float*> rows(sz(channels * g.kh * g.kw));
  std::size_t r = 0;
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j)
        rows[r++] = base + c * plane + i * g.dh * ld + j * g.dw;
  return rows;
}

void gemm_rows_scalar(std::int64_t m, std::int64_t n, std::int64_t k, const float* const* a,
                      const float* const* b, float* c, std::int64_t ldc, bool accumulate) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t q = 0; q < n; ++q) {
      float s = 0.0F;
      for (std::int64_t p = 0; p < k; ++p) s = std::fma(a[i][p], b[p][q], s);
      float& out = c[i * ldc + q];
      out = accumulate ? out + s : s;
    }
}

#if CUTRAIN_CONV_AVX512
__mmask16 lane_mask(std::int64_t count) {  // the first min(count, 16) lanes (count may be <= 0)
  return count >= 16 ? static_cast<__mmask16>(0xFFFF)
                     : static_cast<__mmask16>((1U << std::max<std::int64_t>(count, 0)) - 1U);
}

// Rows [0, MR) x columns [q0, q0 + width), width <= 16 NV: MR x NV accumulators (24 or 16 of
// the 32 vector registers), one fused multiply-add chain per element in ascending p.
template <int MR, int NV>
void rows_tile(std::int64_t k, const float* const* a, const float* const* b, std::int64_t q0,
               std::int64_t width, float* c, std::int64_t ldc, bool accumulate) {
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) mask[v] = lane_mask(width - 16 * v);
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  const float* ar[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) ar[i] = a[i];
  for (std::int64_t p = 0; p < k; ++p) {
    const float* bp = b[p] + q0;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], bp + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ar[i][p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* out = c + i * ldc + q0 + 16 * v;
      __m512 sum = acc[i][v];
      if (accumulate) sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], out), sum);
      _mm512_mask_storeu_ps(out, mask[v], sum);
    }
}

// Columns [q0, q0 + width) of every row, width <= 16 NV: row tiles of MR, then of 4 and 1. Wider
// tiles reuse each loaded B vector more; narrower ones hold more rows.
template <int NV>
void rows_panel(std::int64_t m, std::int64_t k, const float* const* a, const float* const* b,
                std::int64_t q0, std::int64_t width, float* c, std::int64_t ldc, bool accumulate) {
  constexpr int kMr = NV == 3 ? 8 : (NV == 2 ? 12 : 16);
  std::int64_t i = 0;
  for (; i + kMr <= m; i += kMr)
    rows_tile<kMr, NV>(k, a + i, b, q0, width, c + i * ldc, ldc, accumulate);
  for (; i + 4 <= m; i += 4) rows_tile<4, NV>(k, a + i, b, q0, width, c + i * ldc, ldc, accumulate);
  for (; i < m; ++i) rows_tile<1, NV>(k, a + i, b, q0, width, c + i * ldc, ldc, accumulate);
}
#endif

// rows[r] = base + r ld: a dense matrix as row pointers.
std::vector<const float*> dense_rows(const float* base, std::int64_t rows, std::int64_t ld) {
  std::vector<const float*> out(sz(rows));
  for (std::int64_t r = 0; r < rows; ++r) out[sz(r)] = base + r * ld;
  return out;
}

}  // namespace

void gemm_rows(std::int64_t m, std::int64_t n, std::int64_t k, const float* const* a,
               const float* const* b, float* c, std::int64_t ldc, bool accumulate,
               [[maybe_unused]] bool vector) {
#if CUTRAIN_CONV_AVX512
  if (vector) {
    for (std::int64_t q0 = 0; q0 < n;) {
      const std::int64_t rest = n - q0;
      if (rest > 32) {
        rows_panel<3>(m, k, a, b, q0, std::min<std::int64_t>(48, rest), c, ldc, accumulate);
        q0 += 48;
      } else if (rest > 16) {
        rows_panel<2>(m, k, a, b, q0, rest, c, ldc, accumulate);
        q0 += 32;
      } else {
        rows_panel<1>(m, k, a, b, q0, rest, c, ldc, accumulate);
        q0 += 16;
      }
    }
    return;
  }
#endif
  gemm_rows_scalar(m, n, k, a, b, c, ldc, accumulate);
}

bool applies(const rules::ConvGeometry& g) {
  return g.sh == 1 && g.sw == 1 && g.ph <= (g.kh - 1) * g.dh && g.pw <= (g.kw - 1) * g.dw &&
         g.ho == g.h + 2 * g.ph - (g.kh - 1) * g.dh && g.wo == g.w + 2 * g.pw - (g.kw - 1) * g.dw;
}

std::size_t scratch_floats(const rules::ConvGeometry& g) {
  const Grids s(g);
  return sz(s.xp_floats(g) + s.grid_floats(g) + s.dyp_floats(g) + s.dxg_floats(g));
}

std::size_t flipped_floats(const rules::ConvGeometry& g) {
  return sz(g.c * g.co * g.kh * g.kw);
}

void forward_sample(const rules::ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y, float* scratch, rules::Store store) {
  const Grids s(g);
  float* xp = scratch;
  float* grid = xp + s.xp_floats(g);  // [Co, Ho Wp]
  pad_planes(x, g.c, g.h, g.w, g.ph, g.pw, s.hp, s.wp, s.slack, xp);
  const std::vector<const float*> rows = offset_rows(xp, g.c, s.hp * s.wp, g, s.wp);
  const std::vector<const float*> weights = dense_rows(w, g.co, g.k());
  const std::int64_t n = g.ho * s.wp;
  gemm_rows(g.co, n, g.k(), weights.data(), rows.data(), grid, n, false);
  for (std::int64_t co = 0; co < g.co; ++co)
    for (std::int64_t oh = 0; oh < g.ho; ++oh) {
      const float* __restrict__ in = grid + co * n + oh * s.wp;
      float* __restrict__ out = y + (co * g.ho + oh) * g.wo;
      const float b = bias != nullptr ? bias[co] : 0.0F;
      if (bias != nullptr) {
        rules::with_store(store, [&](auto s) {
          for (std::int64_t ow = 0; ow < g.wo; ++ow) out[ow] = rules::stored(s, in[ow] + b);
        });
      } else {
        store_row(in, g.wo, out, store);
      }
    }
}

void flip_kernel(const rules::ConvGeometry& g, const float* w, float* wt) {
  const std::int64_t taps = g.kh * g.kw, kt = g.co * taps;
  for (std::int64_t co = 0; co < g.co; ++co)
    for (std::int64_t ci = 0; ci < g.c; ++ci)
      for (std::int64_t t = 0; t < taps; ++t)
        wt[ci * kt + co * taps + (taps - 1 - t)] = w[(co * g.c + ci) * taps + t];
}

void backward_sample(const rules::ConvGeometry& g, const float* x, const float* dy, const float* wt,
                     float* dw_t, bool accumulate, float* dx, float* scratch, rules::Store store) {
  const Grids s(g);
  float* xp = scratch;
  float* dy_t = xp + s.xp_floats(g);     // dY transposed onto the Wp grid [Ho Wp, Co]
  float* dyp = dy_t + s.grid_floats(g);  // dY padded for dX [Co, Hq, Wq]
  float* dxg = dyp + s.dyp_floats(g);    // dX on the Wq grid [C, H Wq]
  pad_planes(x, g.c, g.h, g.w, g.ph, g.pw, s.hp, s.wp, s.slack, xp);
  // dW^T [K, Co] = rows_x [K, Ho Wp] x dY^T: the grid's extra columns hold zeros in dY^T.
  const std::int64_t n = g.ho * s.wp;
  // Written in order (the reads are Co sequential streams, which the prefetcher follows).
  for (std::int64_t oh = 0; oh < g.ho; ++oh) {
    float* __restrict__ row = dy_t + oh * s.wp * g.co;
    for (std::int64_t ow = 0; ow < g.wo; ++ow) {
      const float* __restrict__ in = dy + oh * g.wo + ow;
      for (std::int64_t co = 0; co < g.co; ++co) row[ow * g.co + co] = in[co * g.p()];
    }
    zero_row(row + g.wo * g.co, (s.wp - g.wo) * g.co);
  }
  const std::vector<const float*> xrows = offset_rows(xp, g.c, s.hp * s.wp, g, s.wp);
  const std::vector<const float*> dyrows_t = dense_rows(dy_t, n, g.co);
  gemm_rows(g.k(), g.co, n, xrows.data(), dyrows_t.data(), dw_t, g.co, accumulate);
  if (dx == nullptr) return;
  const std::int64_t top = (g.kh - 1) * g.dh - g.ph, left = (g.kw - 1) * g.dw - g.pw;
  pad_planes(dy, g.co, g.ho, g.wo, top, left, s.hq, s.wq, s.slack, dyp);
  const std::vector<const float*> dyrows = offset_rows(dyp, g.co, s.hq * s.wq, g, s.wq);
  const std::int64_t nd = g.h * s.wq, kt = g.co * g.kh * g.kw;
  const std::vector<const float*> flipped = dense_rows(wt, g.c, kt);
  gemm_rows(g.c, nd, kt, flipped.data(), dyrows.data(), dxg, nd, false);
  for (std::int64_t ci = 0; ci < g.c; ++ci)
    for (std::int64_t r = 0; r < g.h; ++r) {
      const float* in = dxg + ci * nd + r * s.wq;
      store_row(in, g.w, dx + (ci * g.h + r) * g.w, store);
    }
}

}  // namespace cutrain::nn::backend::direct
