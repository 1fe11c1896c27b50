// Note [depthwise convolution on the CPU] (conv_depthwise_cpu.hpp): per-tap sweeps over the
// padded grid for stride 1, stencils along output rows otherwise.
#include "src/nn/conv_depthwise_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "src/nn/conv_direct_cpu.hpp"

namespace cutrain::nn::backend::depthwise {
namespace {

using Span = rules::ColumnSpan;

void zero(float* __restrict__ p, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) p[i] = 0.0F;
}

// out[wo] = fma(a, in[wo sw + off], out[wo]) for wo in [lo, end): one chain step per column.
// The stride-1 loop is the one g++ vectorizes.
void fma_row(float a, const float* __restrict__ in, std::int64_t sw, std::int64_t off, Span s,
             float* __restrict__ out) {
  if (sw == 1) {
#pragma omp simd
    for (std::int64_t wo = s.lo; wo < s.end; ++wo) out[wo] = std::fma(a, in[wo + off], out[wo]);
  } else {
    for (std::int64_t wo = s.lo; wo < s.end; ++wo)
      out[wo] = std::fma(a, in[wo * sw + off], out[wo]);
  }
}

// Rounds n values in place as `store` says (Note [16-bit stores]), + bias first if given.
void finish(float* __restrict__ p, std::int64_t n, const float* bias, rules::Store store) {
  if (store == rules::Store::kExact) {  // fp32: the common case, inline
    if (bias == nullptr) return;
    const float b = *bias;
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) p[i] += b;
    return;
  }
  const float b = bias != nullptr ? *bias : 0.0F;
  rules::with_store(store, [&](auto s) {
    for (std::int64_t i = 0; i < n; ++i) p[i] = rules::stored(s, bias != nullptr ? p[i] + b : p[i]);
  });
}

}  // namespace

namespace {

// Any stride: along output rows, the taps' column spans computed per row.
void forward_rows(const rules::ConvGeometry& g, const float* x, const float* w, const float* bias,
                  float* y, rules::Store store) {
  const std::int64_t mult = g.co / g.c, taps = g.kh * g.kw;
  for (std::int64_t o = 0; o < g.co; ++o) {
    const float* plane = x + (o / mult) * g.in_plane();
    const float* wk = w + o * taps;
    for (std::int64_t ho = 0; ho < g.ho; ++ho) {
      float* row = y + o * g.p() + ho * g.wo;
      zero(row, g.wo);
      for (std::int64_t i = 0; i < g.kh; ++i) {
        const std::int64_t hi = ho * g.sh - g.ph + i * g.dh;
        if (hi < 0 || hi >= g.h) continue;
        for (std::int64_t j = 0; j < g.kw; ++j) {
          const std::int64_t off = j * g.dw - g.pw;
          fma_row(wk[i * g.kw + j], plane + hi * g.w, g.sw, off, rules::column_span(g, off), row);
        }
      }
      finish(row, g.wo, bias != nullptr ? bias + o : nullptr, store);
    }
  }
}

void backward_rows(const rules::ConvGeometry& g, const float* x, const float* dy, const float* w,
                   float* dw, bool accumulate, float* dx, float* scratch, rules::Store store) {
  const std::int64_t mult = g.co / g.c, taps = g.kh * g.kw;
  // dW: per tap, per-column chains over the output rows, then the columns in order.
  float* cols = scratch;  // [Wo]
  for (std::int64_t o = 0; o < g.co; ++o) {
    const float* plane = x + (o / mult) * g.in_plane();
    const float* dyo = dy + o * g.p();
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const std::int64_t off = j * g.dw - g.pw;
        const Span s = rules::column_span(g, off);
        zero(cols, g.wo);
        for (std::int64_t ho = 0; ho < g.ho; ++ho) {
          const std::int64_t hi = ho * g.sh - g.ph + i * g.dh;
          if (hi < 0 || hi >= g.h) continue;
          const float* __restrict__ in = plane + hi * g.w;
          const float* __restrict__ d = dyo + ho * g.wo;
          if (g.sw == 1) {
#pragma omp simd
            for (std::int64_t wo = s.lo; wo < s.end; ++wo)
              cols[wo] = std::fma(d[wo], in[wo + off], cols[wo]);
          } else {
            for (std::int64_t wo = s.lo; wo < s.end; ++wo)
              cols[wo] = std::fma(d[wo], in[wo * g.sw + off], cols[wo]);
          }
        }
        float sum = 0.0F;
        for (std::int64_t wo = 0; wo < g.wo; ++wo) sum += cols[wo];
        float& out = dw[o * taps + i * g.kw + j];
        out = accumulate ? out + sum : sum;
      }
  }
  if (dx == nullptr) return;
  // dX: each output channel's rows scattered back through its taps, in a fixed order.
  for (std::int64_t c = 0; c < g.c; ++c) {
    float* plane = dx + c * g.in_plane();
    zero(plane, g.in_plane());
    for (std::int64_t o = c * mult; o < (c + 1) * mult; ++o)
      for (std::int64_t ho = 0; ho < g.ho; ++ho) {
        const float* __restrict__ d = dy + o * g.p() + ho * g.wo;
        for (std::int64_t i = 0; i < g.kh; ++i) {
          const std::int64_t hi = ho * g.sh - g.ph + i * g.dh;
          if (hi < 0 || hi >= g.h) continue;
          for (std::int64_t j = 0; j < g.kw; ++j) {
            const std::int64_t off = j * g.dw - g.pw;
            const Span s = rules::column_span(g, off);
            const float wt = w[o * taps + i * g.kw + j];
            float* __restrict__ r = plane + hi * g.w;
            if (g.sw == 1) {
#pragma omp simd
              for (std::int64_t wo = s.lo; wo < s.end; ++wo)
                r[wo + off] = std::fma(wt, d[wo], r[wo + off]);
            } else {
              for (std::int64_t wo = s.lo; wo < s.end; ++wo)
                r[wo * g.sw + off] = std::fma(wt, d[wo], r[wo * g.sw + off]);
            }
          }
        }
      }
    finish(plane, g.in_plane(), nullptr, store);
  }
}

// Stride 1 (direct::applies): Note [implicit GEMM on the CPU]'s padded grid, one channel at a
// time - on the plane padded to Hp x Wp the output is computed at q = oh Wp + ow (the Wp - Wo
// extra columns computed and dropped), and tap (i, j) reads the padded plane at q + i dh Wp + j
// dw: one flat loop over the grid per tap, which vectorizes whatever the width. dX is the same
// over dY padded by (k - 1) d - p with the kernel flipped; dW's sums run in 16 lanes, the lanes
// added in order.
struct Grid {
  std::int64_t hp, wp, hq, wq, slack, n, nd;
  explicit Grid(const rules::ConvGeometry& g)
      : hp(g.h + 2 * g.ph),
        wp(g.w + 2 * g.pw),
        hq(g.h + (g.kh - 1) * g.dh),
        wq(g.w + (g.kw - 1) * g.dw),
        slack(kLanes + (g.kw - 1) * g.dw),
        n(round(g.ho * wp)),
        nd(round(g.h * wq)) {}
  static constexpr std::int64_t kLanes = 16;
  static std::int64_t round(std::int64_t v) { return (v + kLanes - 1) / kLanes * kLanes; }
  std::int64_t xp_floats() const { return round(hp * wp + slack); }
  std::int64_t dyp_floats() const { return round(hq * wq + slack); }
  std::int64_t floats() const { return xp_floats() + n + n + dyp_floats() + nd; }
};

// dst [h + top + bottom, w + left + right] = src [h, w] with zeros around, then zeros to `total`.
// One plane: a single zeroing pass, then the rows - direct::pad_planes zeroes around each row,
// which for these planes cost the depthwise pass 40% (bench_conv's dw row, 4.2 -> 5.8 ms).
void pad(const float* src, std::int64_t h, std::int64_t w, std::int64_t top, std::int64_t left,
         std::int64_t wp, std::int64_t total, float* dst) {
  zero(dst, total);
  for (std::int64_t r = 0; r < h; ++r) {
    float* __restrict__ d = dst + (top + r) * wp + left;
    const float* __restrict__ s = src + r * w;
#pragma omp simd
    for (std::int64_t i = 0; i < w; ++i) d[i] = s[i];
  }
}

// acc[q] = fma(a, in[q], acc[q]) for q < n (n a multiple of the lanes).
void fma_grid(float a, const float* __restrict__ in, std::int64_t n, float* __restrict__ acc) {
#pragma omp simd
  for (std::int64_t q = 0; q < n; ++q) acc[q] = std::fma(a, in[q], acc[q]);
}

void forward_grid(const rules::ConvGeometry& g, const float* x, const float* w, const float* bias,
                  float* y, float* scratch, rules::Store store) {
  const Grid s(g);
  const std::int64_t mult = g.co / g.c, taps = g.kh * g.kw;
  float* xp = scratch;
  float* acc = xp + s.xp_floats();
  for (std::int64_t o = 0; o < g.co; ++o) {
    if (o % mult == 0)
      pad(x + o / mult * g.in_plane(), g.h, g.w, g.ph, g.pw, s.wp, s.xp_floats(), xp);
    zero(acc, s.n);
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j)
        fma_grid(w[o * taps + i * g.kw + j], xp + i * g.dh * s.wp + j * g.dw, s.n, acc);
    for (std::int64_t oh = 0; oh < g.ho; ++oh) {
      float* row = y + o * g.p() + oh * g.wo;
      const float* __restrict__ in = acc + oh * s.wp;
#pragma omp simd
      for (std::int64_t ow = 0; ow < g.wo; ++ow) row[ow] = in[ow];
      finish(row, g.wo, bias != nullptr ? bias + o : nullptr, store);
    }
  }
}

void backward_grid(const rules::ConvGeometry& g, const float* x, const float* dy, const float* w,
                   float* dw, bool accumulate, float* dx, float* scratch, rules::Store store) {
  const Grid s(g);
  const std::int64_t mult = g.co / g.c, taps = g.kh * g.kw, lanes = Grid::kLanes;
  float* xp = scratch;
  float* dyg = xp + s.xp_floats();  // dY on the Wp grid, zeros in the extra columns and the tail
  float* dyp = dyg + 2 * s.n;       // dY padded for dX
  float* dxg = dyp + s.dyp_floats();
  for (std::int64_t o = 0; o < g.co; ++o) {
    if (o % mult == 0)
      pad(x + o / mult * g.in_plane(), g.h, g.w, g.ph, g.pw, s.wp, s.xp_floats(), xp);
    pad(dy + o * g.p(), g.ho, g.wo, 0, 0, s.wp, s.n, dyg);
    for (std::int64_t t = 0; t < taps; ++t) {
      const float* in = xp + (t / g.kw) * g.dh * s.wp + (t % g.kw) * g.dw;
      float part[Grid::kLanes] = {};
      for (std::int64_t q0 = 0; q0 < s.n; q0 += lanes)
#pragma omp simd
        for (std::int64_t l = 0; l < lanes; ++l)
          part[l] = std::fma(dyg[q0 + l], in[q0 + l], part[l]);
      float sum = 0.0F;
      for (const float v : part) sum += v;
      float& out = dw[o * taps + t];
      out = accumulate ? out + sum : sum;
    }
  }
  if (dx == nullptr) return;
  const std::int64_t top = (g.kh - 1) * g.dh - g.ph, left = (g.kw - 1) * g.dw - g.pw;
  for (std::int64_t c = 0; c < g.c; ++c) {
    zero(dxg, s.nd);
    for (std::int64_t o = c * mult; o < (c + 1) * mult; ++o) {
      pad(dy + o * g.p(), g.ho, g.wo, top, left, s.wq, s.dyp_floats(), dyp);
      for (std::int64_t i = 0; i < g.kh; ++i)
        for (std::int64_t j = 0; j < g.kw; ++j)  // the flipped kernel's tap (i, j)
          fma_grid(w[o * taps + (taps - 1 - (i * g.kw + j))], dyp + i * g.dh * s.wq + j * g.dw,
                   s.nd, dxg);
    }
    for (std::int64_t r = 0; r < g.h; ++r) {
      float* row = dx + c * g.in_plane() + r * g.w;
      const float* __restrict__ in = dxg + r * s.wq;
#pragma omp simd
      for (std::int64_t i = 0; i < g.w; ++i) row[i] = in[i];
      finish(row, g.w, nullptr, store);
    }
  }
}

}  // namespace

bool applies(const rules::ConvGeometry& g) {
  return g.groups > 1 && g.groups == g.c;
}

std::size_t scratch_floats(const rules::ConvGeometry& g) {
  return static_cast<std::size_t>(direct::applies(g) ? Grid(g).floats() : g.wo);
}

void forward_sample(const rules::ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y, float* scratch, rules::Store store) {
  if (direct::applies(g))
    forward_grid(g, x, w, bias, y, scratch, store);
  else
    forward_rows(g, x, w, bias, y, store);
}

void backward_sample(const rules::ConvGeometry& g, const float* x, const float* dy, const float* w,
                     float* dw, bool accumulate, float* dx, float* scratch, rules::Store store) {
  if (direct::applies(g))
    backward_grid(g, x, dy, w, dw, accumulate, dx, scratch, store);
  else
    backward_rows(g, x, dy, w, dw, accumulate, dx, scratch, store);
}

}  // namespace cutrain::nn::backend::depthwise
