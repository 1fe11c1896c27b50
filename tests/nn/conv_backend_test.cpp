// The convolution's two lowered paths (src/nn/conv_backend.hpp) against the definition, in
// double: the CPU's per-sample path (Note [convolution per sample on the CPU], and its implicit
// GEMM) and the GPU's chunks (Note [convolution as one GEMM per chunk]), which are
// backend-neutral and so run here on the CPU - chunks smaller than the batch, so dW sums across
// them - for dense, grouped and depthwise convolutions (Note [grouped convolution], Note
// [depthwise convolution on the CPU]: its strided row loops and its stride-1 grid).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/nn/conv.cuh"
#include "src/nn/conv_backend.hpp"
#include "support/random.hpp"

namespace cutrain::nn::backend {
namespace {

std::size_t sz(std::int64_t n) {
  return static_cast<std::size_t>(n);
}

struct Reference {
  std::vector<double> y, dx, dw;
};

// y[n, o, p] = b[o] + sum over the group's channels c and taps (i, j) of W[o, c - c0, i, j] x[n,
// c, ho sh - ph + i dh, wo sw - pw + j dw]; dx and dW are its derivatives against dy.
Reference definition(const rules::ConvGeometry& g, std::int64_t batch, const std::vector<float>& x,
                     const std::vector<float>& w, const std::vector<float>& b,
                     const std::vector<float>& dy) {
  const std::int64_t cg = g.c / g.groups, cog = g.co / g.groups;
  Reference r{std::vector<double>(sz(batch * g.co * g.p())),
              std::vector<double>(sz(batch * g.c * g.in_plane())), std::vector<double>(w.size())};
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t o = 0; o < g.co; ++o)
      for (std::int64_t ho = 0; ho < g.ho; ++ho)
        for (std::int64_t wo = 0; wo < g.wo; ++wo) {
          const std::size_t at = sz(((n * g.co + o) * g.ho + ho) * g.wo + wo);
          double sum = b[sz(o)];
          for (std::int64_t cl = 0; cl < cg; ++cl)
            for (std::int64_t i = 0; i < g.kh; ++i)
              for (std::int64_t j = 0; j < g.kw; ++j) {
                const std::int64_t hi = ho * g.sh - g.ph + i * g.dh;
                const std::int64_t wi = wo * g.sw - g.pw + j * g.dw;
                if (hi < 0 || hi >= g.h || wi < 0 || wi >= g.w) continue;
                const std::int64_t c = o / cog * cg + cl;
                const std::size_t xi = sz(((n * g.c + c) * g.h + hi) * g.w + wi);
                const std::size_t wi_ = sz(((o * cg + cl) * g.kh + i) * g.kw + j);
                sum += double{w[wi_]} * x[xi];
                r.dx[xi] += double{w[wi_]} * dy[at];
                r.dw[wi_] += double{x[xi]} * dy[at];
              }
          r.y[at] = sum;
        }
  return r;
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (const double v : want) scale = std::max(scale, std::fabs(v));
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 2e-6 * scale) << what << " [" << i << "]";
}

TEST(ConvBackend, ChunksAndSamplesGiveTheDefinitionGroupedOrNot) {
  struct Case {
    const char* name;
    rules::ConvGeometry g;
  };
  const Case cases[] = {
      {"dense 3-4 3x3 pad 1", rules::conv_geometry(3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1)},
      {"groups 2, 4-6 3x3 pad 1", rules::conv_geometry(4, 6, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
      {"depthwise 3, stride 2", rules::conv_geometry(3, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3)},
      {"depthwise x2, dilated 3x2", rules::conv_geometry(2, 7, 8, 4, 3, 2, 1, 1, 2, 1, 2, 1, 2)},
      {"depthwise 4, 5x5 pad 2, wide",
       rules::conv_geometry(4, 5, 37, 4, 5, 5, 1, 1, 2, 2, 1, 1, 4)},
      {"depthwise 2, 1x1 pad 1 (beyond the reach)",
       rules::conv_geometry(2, 4, 5, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2)},
      {"groups 4, 8-4 1x1 stride (1, 2)",
       rules::conv_geometry(8, 5, 6, 4, 1, 1, 1, 2, 0, 0, 1, 1, 4)},
  };
  const std::int64_t batch = 5, nb = 2;  // chunks of 2, 2 and 1
  const Exec e{Device::cpu()};
  for (const Case& t : cases) {
    SCOPED_TRACE(t.name);
    const rules::ConvGeometry& g = t.g;
    const std::vector<float> x = testing::normal_values(sz(batch * g.c * g.in_plane()), 1.0F, 1);
    const std::vector<float> w = testing::normal_values(sz(g.co * g.kg()), 0.5F, 2);
    const std::vector<float> b = testing::normal_values(sz(g.co), 0.5F, 3);
    const std::vector<float> dy = testing::normal_values(sz(batch * g.co * g.p()), 1.0F, 4);
    const Reference want = definition(g, batch, x, w, b, dy);
    std::vector<float> work(
        std::max(conv_cpu_workspace_floats(g, batch), sz(nb * g.p() * (g.k() + g.co))));
    std::vector<float> y(want.y.size()), dx(want.dx.size()), dw(want.dw.size());
    conv_forward_cpu(e, g, x.data(), batch, w.data(), b.data(), y.data(), work.data());
    expect_near(y, want.y, "per-sample y");
    conv_backward_cpu(e, g, x.data(), dy.data(), batch, w.data(), dw.data(), dx.data(),
                      work.data());
    expect_near(dx, want.dx, "per-sample dx");
    expect_near(dw, want.dw, "per-sample dW");
    // Note [16-bit stores]: a bf16 store is the exact value rounded once, on every path.
    std::vector<float> y16(y.size()), dx16(dx.size()), dw16(dw.size());
    conv_forward_cpu(e, g, x.data(), batch, w.data(), b.data(), y16.data(), work.data(),
                     rules::Store::kBf16);
    conv_backward_cpu(e, g, x.data(), dy.data(), batch, w.data(), dw16.data(), dx16.data(),
                      work.data(), rules::Store::kBf16);
    for (std::size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y16[i], rules::stored(rules::Store::kBf16, y[i])) << "bf16 y " << i;
    for (std::size_t i = 0; i < dx.size(); ++i)
      ASSERT_EQ(dx16[i], rules::stored(rules::Store::kBf16, dx[i])) << "bf16 dx " << i;
    EXPECT_EQ(dw16, dw);                 // the weight gradient stays fp32
    std::fill(y.begin(), y.end(), NAN);  // every value must be written again
    std::fill(dx.begin(), dx.end(), NAN);
    std::fill(dw.begin(), dw.end(), NAN);
    conv_forward_chunks(e, g, nb, x.data(), batch, w.data(), b.data(), y.data(), work.data());
    expect_near(y, want.y, "chunks y");
    conv_backward_chunks(e, g, nb, x.data(), dy.data(), batch, w.data(), dw.data(), dx.data(),
                         work.data());
    expect_near(dx, want.dx, "chunks dx");
    expect_near(dw, want.dw, "chunks dW");
  }
}

}  // namespace
}  // namespace cutrain::nn::backend
