// Note [implicit GEMM on the CPU]: the kernel gives the scalar loop's bits (every tail of rows,
// columns and depth), and stride-1 convolutions of many shapes - kernels, paddings,
// dilations, rectangles, one channel - match the definition computed in double, forward, dW and
// dX; shapes the implicit GEMM does not cover are left to the lowering.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "src/nn/conv_direct_cpu.hpp"
#include "support/random.hpp"

namespace cutrain::nn::backend {
namespace {

std::vector<float> normals(std::size_t n, std::uint32_t seed) {
  return testing::normal_values(n, 1.0F, seed);
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

TEST(ConvDirect, TheKernelGivesTheScalarLoopsBitsAtEveryTail) {
  for (const std::int64_t m : {1, 3, 4, 5, 8, 12, 13, 16, 29})
    for (const std::int64_t n : {1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100})
      for (const std::int64_t k : {1, 3, 9, 33}) {
        const std::vector<float> a = normals(static_cast<std::size_t>(m * k + 8), 1);
        const std::vector<float> b = normals(static_cast<std::size_t>(k * n + 64), 2);
        // Rows at odd offsets and out of order, as a padded plane's are.
        std::vector<const float*> arows(static_cast<std::size_t>(m)),
            brows(static_cast<std::size_t>(k));
        for (std::int64_t i = 0; i < m; ++i)
          arows[static_cast<std::size_t>(i)] = a.data() + (i * 5 % m) * k + i % 2;
        for (std::int64_t p = 0; p < k; ++p)
          brows[static_cast<std::size_t>(p)] = b.data() + (p * 7 % k) * n + p % 3;
        for (const bool accumulate : {false, true}) {
          std::vector<float> v(static_cast<std::size_t>(m * n), 0.5F), s(v);
          direct::gemm_rows(m, n, k, arows.data(), brows.data(), v.data(), n, accumulate, true);
          direct::gemm_rows(m, n, k, arows.data(), brows.data(), s.data(), n, accumulate, false);
          ASSERT_EQ(bits(v), bits(s)) << m << " x " << n << " x " << k << ", " << accumulate;
          for (std::int64_t i = 0; i < m; ++i)  // against the sum in double
            for (std::int64_t q = 0; q < n; ++q) {
              double want = accumulate ? 0.5 : 0.0;
              for (std::int64_t p = 0; p < k; ++p)
                want += static_cast<double>(arows[static_cast<std::size_t>(i)][p]) *
                        brows[static_cast<std::size_t>(p)][q];
              ASSERT_NEAR(v[static_cast<std::size_t>(i * n + q)], want, 1e-5 * (1 + std::sqrt(k)));
            }
        }
      }
}

rules::ConvGeometry geometry(std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t co,
                             std::int64_t kh, std::int64_t kw, std::int64_t ph, std::int64_t pw,
                             std::int64_t dh, std::int64_t dw) {
  rules::ConvGeometry g;
  g.c = c, g.h = h, g.w = w, g.co = co, g.kh = kh, g.kw = kw, g.ph = ph, g.pw = pw, g.dh = dh,
  g.dw = dw;
  g.ho = rules::conv_output_size(h, kh, 1, ph, dh);
  g.wo = rules::conv_output_size(w, kw, 1, pw, dw);
  return g;
}

// The definition, in double: y[co][oh][ow] = b[co] + sum w[co][ci][i][j] x[ci][oh - ph + i dh]
// [ow - pw + j dw]; dW and dX its derivatives for the upstream gradient dy.
struct Reference {
  std::vector<double> y, dw, dx;
};
Reference reference(const rules::ConvGeometry& g, const std::vector<float>& x,
                    const std::vector<float>& w, const std::vector<float>& b,
                    const std::vector<float>& dy) {
  Reference r{std::vector<double>(static_cast<std::size_t>(g.co * g.p())),
              std::vector<double>(w.size()), std::vector<double>(x.size())};
  for (std::int64_t co = 0; co < g.co; ++co)
    for (std::int64_t oh = 0; oh < g.ho; ++oh)
      for (std::int64_t ow = 0; ow < g.wo; ++ow) {
        const auto o = static_cast<std::size_t>((co * g.ho + oh) * g.wo + ow);
        double s = b[static_cast<std::size_t>(co)];
        for (std::int64_t ci = 0; ci < g.c; ++ci)
          for (std::int64_t i = 0; i < g.kh; ++i)
            for (std::int64_t j = 0; j < g.kw; ++j) {
              const std::int64_t hi = oh - g.ph + i * g.dh, wi = ow - g.pw + j * g.dw;
              if (hi < 0 || hi >= g.h || wi < 0 || wi >= g.w) continue;
              const auto xi = static_cast<std::size_t>((ci * g.h + hi) * g.w + wi);
              const auto wk = static_cast<std::size_t>(((co * g.c + ci) * g.kh + i) * g.kw + j);
              s += static_cast<double>(w[wk]) * x[xi];
              r.dw[wk] += static_cast<double>(dy[o]) * x[xi];
              r.dx[xi] += static_cast<double>(dy[o]) * w[wk];
            }
        r.y[o] = s;
      }
  return r;
}

TEST(ConvDirect, StrideOneConvolutionsMatchTheDefinition) {
  const rules::ConvGeometry shapes[] = {
      geometry(3, 9, 11, 5, 3, 3, 1, 1, 1, 1),   // the default CNN's kind, rectangular
      geometry(1, 28, 28, 8, 3, 3, 1, 1, 1, 1),  // one input channel
      geometry(4, 12, 10, 6, 5, 5, 2, 2, 1, 1),  // 5 x 5, padding 2
      geometry(2, 8, 8, 3, 3, 3, 0, 0, 1, 1),    // no padding: a smaller output
      geometry(5, 7, 9, 4, 1, 1, 0, 0, 1, 1),    // 1 x 1
      geometry(3, 13, 12, 4, 3, 3, 2, 2, 2, 2),  // dilation 2
      geometry(2, 10, 6, 3, 3, 1, 1, 0, 1, 1),   // 3 x 1, padding (1, 0)
      geometry(3, 6, 17, 9, 2, 4, 1, 3, 1, 1),   // even kernels, padding up to the reach
  };
  for (const rules::ConvGeometry& g : shapes) {
    ASSERT_TRUE(direct::applies(g)) << g.kh << "x" << g.kw;
    const std::vector<float> x = normals(static_cast<std::size_t>(g.c * g.h * g.w), 3),
                             w = normals(static_cast<std::size_t>(g.co * g.k()), 4),
                             b = normals(static_cast<std::size_t>(g.co), 5),
                             dy = normals(static_cast<std::size_t>(g.co * g.p()), 6);
    std::vector<float> scratch(direct::scratch_floats(g)), wt(direct::flipped_floats(g));
    std::vector<float> y(dy.size()), dw_t(w.size()), dx(x.size());
    direct::forward_sample(g, x.data(), w.data(), b.data(), y.data(), scratch.data(),
                           rules::Store::kExact);
    direct::flip_kernel(g, w.data(), wt.data());
    direct::backward_sample(g, x.data(), dy.data(), wt.data(), dw_t.data(), false, dx.data(),
                            scratch.data(), rules::Store::kExact);
    const Reference want = reference(g, x, w, b, dy);
    const double tol = 1e-5 * (1 + std::sqrt(static_cast<double>(g.k())));
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want.y[i], tol) << "y " << i;
    for (std::int64_t co = 0; co < g.co; ++co)  // dw_t is [K, Co]
      for (std::int64_t k = 0; k < g.k(); ++k)
        ASSERT_NEAR(dw_t[static_cast<std::size_t>(k * g.co + co)],
                    want.dw[static_cast<std::size_t>(co * g.k() + k)],
                    1e-5 * (1 + std::sqrt(static_cast<double>(g.p()))))
            << "dW " << co << ", " << k;
    for (std::size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx[i], want.dx[i], tol) << "dX " << i;
  }
}

TEST(ConvDirect, LeavesOtherShapesToTheLowering) {
  rules::ConvGeometry strided = geometry(3, 9, 9, 4, 3, 3, 1, 1, 1, 1);
  strided.sh = strided.sw = 2;
  strided.ho = rules::conv_output_size(9, 3, 2, 1, 1);
  strided.wo = strided.ho;
  EXPECT_FALSE(direct::applies(strided));
  // Padding beyond the kernel's reach (k - 1) d: dX's padded dY would need negative padding.
  EXPECT_FALSE(direct::applies(geometry(3, 9, 9, 4, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(direct::applies(geometry(3, 9, 9, 4, 3, 3, 2, 2, 1, 1)));
}

}  // namespace
}  // namespace cutrain::nn::backend
