#pragma once
// Pooling windows (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d semantics, ceil_mode off),
// one output element per call in the forward pass and one input element per call in the
// backward pass (a gather over the windows that contain it: no atomics, a fixed order, the same
// bits on every run and backend). NCHW; the geometry is rules::ConvGeometry with co == c.
//
//   max:      y = max over the window's in-bounds elements; the index of the first maximum in
//             row-major window order is kept (a NaN wins - the last NaN - and propagates), as
//             PyTorch's CPU kernel compares; dx[i] = sum of dy over the windows whose kept index is
//             i
//   avg:      y = sum over the window's in-bounds elements / (kh kw) - padding counts as zeros
//             (count_include_pad=True, PyTorch's default); dx[i] = sum dy / (kh kw) over the
//             windows containing i
//   adaptive: window rows [floor(o H / Ho), ceil((o + 1) H / Ho)), columns likewise;
//             y = window mean, dx[i] = sum dy / window size over the windows containing i

#include <cmath>
#include <cstdint>

#include "cutrain/hd.hpp"
#include "kernels/nn/conv.cuh"

namespace cutrain::rules {

enum class Pool { kMax, kAvg, kAdaptiveAvg };

// Each rule below comes in two forms: *_at works on one plane at (ho, wo) or (hi, wi) - the CPU
// loops over a plane call it with no division per element - and the form taking a flat NCHW
// index o or i decomposes it and calls *_at (the GPU's lanes). The same arithmetic either way.

// Whether a max pool's window, scanned in row-major order, keeps v over the best so far: a
// larger value, or a NaN (v != v, on host and device alike).
CUTRAIN_HD bool max_pool_keeps(float v, float best) {
  return v > best || v != v;
}

// Output (ho, wo) of a max pool over `plane`; *index = h W + w of the kept max.
CUTRAIN_HD float max_pool_at(const ConvGeometry& g, const float* plane, std::int64_t ho,
                             std::int64_t wo, std::int32_t* index) {
  const std::int64_t h0 = ho * g.sh - g.ph, w0 = wo * g.sw - g.pw;
  float best = -INFINITY;
  std::int64_t at = -1;
  for (std::int64_t hi = h0; hi < h0 + g.kh; ++hi) {
    if (hi < 0 || hi >= g.h) continue;
    for (std::int64_t wi = w0; wi < w0 + g.kw; ++wi) {
      if (wi < 0 || wi >= g.w) continue;
      const float v = plane[hi * g.w + wi];
      if (at < 0 || max_pool_keeps(v, best)) {
        best = v;
        at = hi * g.w + wi;
      }
    }
  }
  if (index != nullptr) *index = static_cast<std::int32_t>(at);  // null: the value alone
  return best;
}

// Output element o (NCHW over [N, C, Ho, Wo]) of a max pool; *index as max_pool_at.
CUTRAIN_HD float max_pool_value(const ConvGeometry& g, const float* x, std::int64_t o,
                                std::int32_t* index) {
  const std::int64_t wo = o % g.wo, ho = (o / g.wo) % g.ho, nc = o / g.p();
  return max_pool_at(g, x + nc * g.in_plane(), ho, wo, index);
}

// The output rows (or columns) whose window [o s - pad, o s - pad + k) contains input row i.
CUTRAIN_HD void windows_containing(std::int64_t i, std::int64_t k, std::int64_t s, std::int64_t pad,
                                   std::int64_t out, std::int64_t* first, std::int64_t* last) {
  const std::int64_t lo = i + pad - k + 1;  // o s >= lo
  *first = lo <= 0 ? 0 : (lo + s - 1) / s;
  const std::int64_t hi = (i + pad) / s;  // o s <= i + pad
  *last = hi < out - 1 ? hi : out - 1;
}

// dx at (hi, wi) of a max pool: dy and index are the sample-channel's output planes.
CUTRAIN_HD float max_pool_grad_at(const ConvGeometry& g, const float* dy, const std::int32_t* index,
                                  std::int64_t hi, std::int64_t wi) {
  std::int64_t h_first, h_last, w_first, w_last;
  windows_containing(hi, g.kh, g.sh, g.ph, g.ho, &h_first, &h_last);
  windows_containing(wi, g.kw, g.sw, g.pw, g.wo, &w_first, &w_last);
  const auto self = static_cast<std::int32_t>(hi * g.w + wi);
  float sum = 0.0F;
  if (index == nullptr) return sum;  // no forward kept positions (callers always pass them)
  for (std::int64_t ho = h_first; ho <= h_last; ++ho)
    for (std::int64_t wo = w_first; wo <= w_last; ++wo) {
      const std::int64_t o = ho * g.wo + wo;
      if (index[o] == self) sum += dy[o];
    }
  return sum;
}

// dx[i] (NCHW over [N, C, H, W]) of a max pool.
CUTRAIN_HD float max_pool_grad(const ConvGeometry& g, const float* dy, const std::int32_t* index,
                               std::int64_t i) {
  const std::int64_t wi = i % g.w, hi = (i / g.w) % g.h, nc = i / g.in_plane();
  return max_pool_grad_at(g, dy + nc * g.p(), index + nc * g.p(), hi, wi);
}

CUTRAIN_HD float avg_pool_at(const ConvGeometry& g, const float* plane, std::int64_t ho,
                             std::int64_t wo) {
  const std::int64_t h0 = ho * g.sh - g.ph, w0 = wo * g.sw - g.pw;
  float sum = 0.0F;
  for (std::int64_t hi = h0 < 0 ? 0 : h0; hi < h0 + g.kh && hi < g.h; ++hi)
    for (std::int64_t wi = w0 < 0 ? 0 : w0; wi < w0 + g.kw && wi < g.w; ++wi)
      sum += plane[hi * g.w + wi];
  return sum / static_cast<float>(g.kh * g.kw);
}

CUTRAIN_HD float avg_pool_value(const ConvGeometry& g, const float* x, std::int64_t o) {
  const std::int64_t wo = o % g.wo, ho = (o / g.wo) % g.ho, nc = o / g.p();
  return avg_pool_at(g, x + nc * g.in_plane(), ho, wo);
}

CUTRAIN_HD float avg_pool_grad_at(const ConvGeometry& g, const float* dy, std::int64_t hi,
                                  std::int64_t wi) {
  std::int64_t h_first, h_last, w_first, w_last;
  windows_containing(hi, g.kh, g.sh, g.ph, g.ho, &h_first, &h_last);
  windows_containing(wi, g.kw, g.sw, g.pw, g.wo, &w_first, &w_last);
  float sum = 0.0F;
  for (std::int64_t ho = h_first; ho <= h_last; ++ho)
    for (std::int64_t wo = w_first; wo <= w_last; ++wo) sum += dy[ho * g.wo + wo];
  return sum / static_cast<float>(g.kh * g.kw);
}

CUTRAIN_HD float avg_pool_grad(const ConvGeometry& g, const float* dy, std::int64_t i) {
  const std::int64_t wi = i % g.w, hi = (i / g.w) % g.h, nc = i / g.in_plane();
  return avg_pool_grad_at(g, dy + nc * g.p(), hi, wi);
}

CUTRAIN_HD std::int64_t adaptive_begin(std::int64_t o, std::int64_t in, std::int64_t out) {
  return (o * in) / out;
}
CUTRAIN_HD std::int64_t adaptive_end(std::int64_t o, std::int64_t in, std::int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

CUTRAIN_HD float adaptive_avg_pool_at(const ConvGeometry& g, const float* plane, std::int64_t ho,
                                      std::int64_t wo) {
  const std::int64_t h0 = adaptive_begin(ho, g.h, g.ho), h1 = adaptive_end(ho, g.h, g.ho);
  const std::int64_t w0 = adaptive_begin(wo, g.w, g.wo), w1 = adaptive_end(wo, g.w, g.wo);
  float sum = 0.0F;
  for (std::int64_t hi = h0; hi < h1; ++hi)
    for (std::int64_t wi = w0; wi < w1; ++wi) sum += plane[hi * g.w + wi];
  return sum / static_cast<float>((h1 - h0) * (w1 - w0));
}

CUTRAIN_HD float adaptive_avg_pool_value(const ConvGeometry& g, const float* x, std::int64_t o) {
  const std::int64_t wo = o % g.wo, ho = (o / g.wo) % g.ho, nc = o / g.p();
  return adaptive_avg_pool_at(g, x + nc * g.in_plane(), ho, wo);
}

CUTRAIN_HD float adaptive_avg_pool_grad_at(const ConvGeometry& g, const float* dy, std::int64_t hi,
                                           std::int64_t wi) {
  float sum = 0.0F;
  for (std::int64_t ho = 0; ho < g.ho; ++ho) {
    const std::int64_t h0 = adaptive_begin(ho, g.h, g.ho), h1 = adaptive_end(ho, g.h, g.ho);
    if (hi < h0 || hi >= h1) continue;
    for (std::int64_t wo = 0; wo < g.wo; ++wo) {
      const std::int64_t w0 = adaptive_begin(wo, g.w, g.wo), w1 = adaptive_end(wo, g.w, g.wo);
      if (wi < w0 || wi >= w1) continue;
      sum += dy[ho * g.wo + wo] / static_cast<float>((h1 - h0) * (w1 - w0));
    }
  }
  return sum;
}

CUTRAIN_HD float adaptive_avg_pool_grad(const ConvGeometry& g, const float* dy, std::int64_t i) {
  const std::int64_t wi = i % g.w, hi = (i / g.w) % g.h, nc = i / g.in_plane();
  return adaptive_avg_pool_grad_at(g, dy + nc * g.p(), hi, wi);
}

// The dispatch both backends call per element: output o forward (index: max pooling's kept
// position, unused otherwise), input i backward.
CUTRAIN_HD float pool_value(Pool kind, const ConvGeometry& g, const float* x, std::int64_t o,
                            std::int32_t* index) {
  switch (kind) {
    case Pool::kMax:
      return max_pool_value(g, x, o, index ? index + o : nullptr);
    case Pool::kAvg:
      return avg_pool_value(g, x, o);
    case Pool::kAdaptiveAvg:
      return adaptive_avg_pool_value(g, x, o);
  }
  return 0.0F;
}
CUTRAIN_HD float pool_grad(Pool kind, const ConvGeometry& g, const float* dy,
                           const std::int32_t* index, std::int64_t i) {
  switch (kind) {
    case Pool::kMax:
      return max_pool_grad(g, dy, index, i);
    case Pool::kAvg:
      return avg_pool_grad(g, dy, i);
    case Pool::kAdaptiveAvg:
      return adaptive_avg_pool_grad(g, dy, i);
  }
  return 0.0F;
}

// Max pooling without padding (every window inside the plane): max_pool_at's scan without its
// bounds checks, the same comparisons in the same order.
CUTRAIN_HD void max_pool_plane_unpadded(const ConvGeometry& g, const float* x, float* y,
                                        std::int32_t* index) {
  for (std::int64_t ho = 0; ho < g.ho; ++ho)
    for (std::int64_t wo = 0; wo < g.wo; ++wo) {
      const std::int64_t first = ho * g.sh * g.w + wo * g.sw;
      float best = x[first];
      std::int64_t at = first;
      for (std::int64_t i = 0; i < g.kh; ++i)
        for (std::int64_t j = i == 0 ? 1 : 0; j < g.kw; ++j) {
          const std::int64_t e = first + i * g.w + j;
          if (max_pool_keeps(x[e], best)) {
            best = x[e];
            at = e;
          }
        }
      y[ho * g.wo + wo] = best;
      if (index != nullptr) index[ho * g.wo + wo] = static_cast<std::int32_t>(at);
    }
}

// The 2 x 2, stride 2 case of max_pool_plane_unpadded (the default CNN's pooling): the same
// comparisons in the same order, written as selects so that g++ vectorizes a row.
CUTRAIN_HD void max_pool_plane_2x2(const ConvGeometry& g, const float* x, float* y,
                                   std::int32_t* index) {
  for (std::int64_t ho = 0; ho < g.ho; ++ho) {
    const float* r0 = x + 2 * ho * g.w;
    const float* r1 = r0 + g.w;
    float* out = y + ho * g.wo;
    std::int32_t* kept = index != nullptr ? index + ho * g.wo : nullptr;
    const auto first = static_cast<std::int32_t>(2 * ho * g.w);
    const auto w = static_cast<std::int32_t>(g.w);
    for (std::int64_t wo = 0; wo < g.wo; ++wo) {
      const float a = r0[2 * wo], b = r0[2 * wo + 1], c = r1[2 * wo], d = r1[2 * wo + 1];
      std::int32_t at = first + static_cast<std::int32_t>(2 * wo);
      float best = a;
      bool k = max_pool_keeps(b, best);
      best = k ? b : best;
      at = k ? at + 1 : at;
      k = max_pool_keeps(c, best);
      best = k ? c : best;
      at = k ? first + w + static_cast<std::int32_t>(2 * wo) : at;
      k = max_pool_keeps(d, best);
      best = k ? d : best;
      at = k ? first + w + static_cast<std::int32_t>(2 * wo) + 1 : at;
      out[wo] = best;
      if (kept != nullptr) kept[wo] = at;
    }
  }
}

// One plane of the forward pass (the CPU loop): y, index = the plane's outputs.
CUTRAIN_HD void pool_plane(Pool kind, const ConvGeometry& g, const float* x, float* y,
                           std::int32_t* index) {
  if (kind == Pool::kMax && g.ph == 0 && g.pw == 0 && g.kh == 2 && g.kw == 2 && g.sh == 2 &&
      g.sw == 2 && g.dh == 1 && g.dw == 1) {
    max_pool_plane_2x2(g, x, y, index);
    return;
  }
  if (kind == Pool::kMax && g.ph == 0 && g.pw == 0) {
    max_pool_plane_unpadded(g, x, y, index);
    return;
  }
  for (std::int64_t ho = 0; ho < g.ho; ++ho)
    for (std::int64_t wo = 0; wo < g.wo; ++wo) {
      const std::int64_t o = ho * g.wo + wo;
      y[o] = kind == Pool::kMax   ? max_pool_at(g, x, ho, wo, index ? index + o : nullptr)
             : kind == Pool::kAvg ? avg_pool_at(g, x, ho, wo)
                                  : adaptive_avg_pool_at(g, x, ho, wo);
    }
}
// One plane of the backward pass: dx = the plane's input gradient.
CUTRAIN_HD void pool_grad_plane(Pool kind, const ConvGeometry& g, const float* dy,
                                const std::int32_t* index, float* dx) {
  if (kind == Pool::kMax && index != nullptr && g.sh >= g.kh && g.sw >= g.kw) {
    // Windows that do not overlap: each input element is kept by at most one output, so
    // max_pool_grad_at's sum is 0 or 0 + dy[o] (0 + -0 is +0: the same bits), scattered here.
    for (std::int64_t e = 0; e < g.in_plane(); ++e) dx[e] = 0.0F;
    for (std::int64_t o = 0; o < g.p(); ++o)
      if (index[o] >= 0) dx[index[o]] = 0.0F + dy[o];
    return;
  }
  for (std::int64_t hi = 0; hi < g.h; ++hi)
    for (std::int64_t wi = 0; wi < g.w; ++wi)
      dx[hi * g.w + wi] = kind == Pool::kMax   ? max_pool_grad_at(g, dy, index, hi, wi)
                          : kind == Pool::kAvg ? avg_pool_grad_at(g, dy, hi, wi)
                                               : adaptive_avg_pool_grad_at(g, dy, hi, wi);
}

}  // namespace cutrain::rules
