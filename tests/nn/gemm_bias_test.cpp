// backend::gemm_bias: C = op(A) op(B) + bias, against a float64 triple loop for every
// transposition; on the GPU through cuBLASLt's BIAS epilogue (Note [bias in the GEMM
// epilogue]), whose fallbacks (no heuristic, unaligned bias, the path switched off) must give the
// same numbers through gemm + add_bias.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "cutrain/stream.hpp"
#include "src/nn/backend.hpp"
#include "support/gpu.hpp"
#if CUTRAIN_WITH_CUDA
#include "src/cuda/handles.hpp"
#include "src/cuda/lt_matmul.hpp"
#endif

namespace cutrain::nn {
namespace {

struct Case {
  bool trans_a, trans_b;
  std::int64_t m, n, k;
};

// Shapes of a Linear's forward (x W^T: trans_b) and the other three transpositions; a one-row
// batch; a one-column output and a one-deep product (cuBLASLt's heuristic refuses those: the
// fallback path); odd sizes that leave rows unaligned.
const std::vector<Case> kCases = {{false, true, 33, 64, 20}, {false, false, 17, 24, 9},
                                  {true, false, 8, 12, 31},  {true, true, 5, 40, 16},
                                  {false, true, 1, 10, 784}, {false, true, 7, 1, 5},
                                  {false, true, 6, 13, 1},   {false, true, 128, 10, 256}};

struct Problem {
  Case c;
  std::vector<float> a, b, bias;
  std::int64_t lda, ldb;
  std::vector<double> want;   // float64 reference, [m, n]
  std::vector<double> scale;  // sum |terms| per element: the size of its rounding error
};

Problem make(const Case& c, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  Problem p{c,
            std::vector<float>(static_cast<std::size_t>(c.m * c.k)),
            std::vector<float>(static_cast<std::size_t>(c.k * c.n)),
            std::vector<float>(static_cast<std::size_t>(c.n)),
            c.trans_a ? c.m : c.k,
            c.trans_b ? c.k : c.n,
            {},
            {}};
  for (float& v : p.a) v = normal(rng);
  for (float& v : p.b) v = normal(rng);
  for (float& v : p.bias) v = 3.0F * normal(rng);
  // op(A)[i, l]: A stored [m, k] (lda k) or [k, m] (lda m); op(B)[l, j] likewise.
  auto at = [&](std::int64_t i, std::int64_t l) {
    return c.trans_a ? p.a[static_cast<std::size_t>(l * p.lda + i)]
                     : p.a[static_cast<std::size_t>(i * p.lda + l)];
  };
  auto bt = [&](std::int64_t l, std::int64_t j) {
    return c.trans_b ? p.b[static_cast<std::size_t>(j * p.ldb + l)]
                     : p.b[static_cast<std::size_t>(l * p.ldb + j)];
  };
  for (std::int64_t i = 0; i < c.m; ++i)
    for (std::int64_t j = 0; j < c.n; ++j) {
      double s = p.bias[static_cast<std::size_t>(j)], mag = std::fabs(s);
      for (std::int64_t l = 0; l < c.k; ++l) {
        const double t = static_cast<double>(at(i, l)) * bt(l, j);
        s += t;
        mag += std::fabs(t);
      }
      p.want.push_back(s);
      p.scale.push_back(mag);
    }
  return p;
}

// fp32 accumulation over k terms: error within a few k ulps of the magnitude sum.
void expect_close(const Problem& p, const std::vector<float>& got, const char* what) {
  ASSERT_EQ(got.size(), p.want.size());
  const double ulp = std::ldexp(1.0, -23);
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], p.want[i], 2.0 * static_cast<double>(p.c.k + 1) * ulp * p.scale[i])
        << what << ": op(A) " << (p.c.trans_a ? "T" : "N") << " op(B) " << (p.c.trans_b ? "T" : "N")
        << " m " << p.c.m << " n " << p.c.n << " k " << p.c.k << " element " << i;
}

// Runs gemm_bias with `e`; the bias `bias_offset` floats into its buffer (1: not 16-byte
// aligned). `stream`: e's stream, waited for before the result is read back.
std::vector<float> run(const backend::Exec& e, const Problem& p, std::size_t bias_offset = 0,
                       const Stream* stream = nullptr) {
  const Device d = e.device;
  Buffer a(p.a.size() * sizeof(float), d), b(p.b.size() * sizeof(float), d),
      bias((p.bias.size() + 4) * sizeof(float), d), c(p.want.size() * sizeof(float), d);
  float* bias_at = bias.as<float>() + bias_offset;
  copy_bytes(a.data(), d, p.a.data(), Device::cpu(), a.bytes());
  copy_bytes(b.data(), d, p.b.data(), Device::cpu(), b.bytes());
  copy_bytes(bias_at, d, p.bias.data(), Device::cpu(), p.bias.size() * sizeof(float));
  backend::gemm_bias(e, p.c.trans_a, p.c.trans_b, p.c.m, p.c.n, p.c.k, a.as<float>(), p.lda,
                     b.as<float>(), p.ldb, c.as<float>(), p.c.n, bias_at);
  if (stream != nullptr) stream->synchronize();
  std::vector<float> out(p.want.size());
  copy_bytes(out.data(), Device::cpu(), c.data(), d, c.bytes());
  return out;
}

TEST(GemmBias, CpuIsTheProductPlusTheBiasForEveryTransposition) {
  for (std::size_t i = 0; i < kCases.size(); ++i) {
    const Problem p = make(kCases[i], static_cast<std::uint32_t>(i + 1));
    expect_close(p, run({Device::cpu()}, p), "cpu");
  }
}

TEST(GemmBias, RejectsAnOutputWithGapsBetweenRows) {
  std::vector<float> a(6, 1.0F), b(6, 1.0F), bias(3, 0.0F), c(12);
  EXPECT_THROW(backend::gemm_bias({Device::cpu()}, false, false, 2, 3, 2, a.data(), 2, b.data(), 3,
                                  c.data(), 4, bias.data()),
               Error);
}

#if CUTRAIN_WITH_CUDA
struct GpuExec {
  Stream stream{Device::cuda(0)};
  detail::CublasHandle cublas{0};
  detail::LtMatmul lt{0};
  backend::Exec exec() {
    cublas.set_stream(stream.native());
    return {Device::cuda(0), stream.native(), cublas.get(), &lt};
  }
};

TEST(GemmBiasGpu, EpilogueGivesTheProductPlusTheBias) {
  CUTRAIN_REQUIRE_GPU();
  GpuExec g;
  ASSERT_TRUE(g.lt.enabled()) << "unset CUTRAIN_CUBLASLT to test the fused path";
  std::int64_t expected_fallbacks = 0;
  for (std::size_t i = 0; i < kCases.size(); ++i) {
    const Problem p = make(kCases[i], static_cast<std::uint32_t>(i + 1));
    const std::int64_t fused_before = g.lt.fused_calls();
    expect_close(p, run(g.exec(), p, 0, &g.stream), "gpu");
    const bool degenerate = p.c.n < 2 || p.c.k < 2;
    if (degenerate) ++expected_fallbacks;
    // Every Linear forward (x W^T) must really run fused, or the test proves nothing about the
    // path training takes; the other transpositions may fall back, with the same result.
    if (!degenerate && !p.c.trans_a && p.c.trans_b) {
      EXPECT_EQ(g.lt.fused_calls(), fused_before + 1)
          << "cuBLASLt found no algorithm for m " << p.c.m << " n " << p.c.n << " k " << p.c.k;
    }
    // A bias off the 16-byte grid runs in two passes, with the same result.
    const std::int64_t fallbacks_before = g.lt.fallbacks();
    expect_close(p, run(g.exec(), p, 1, &g.stream), "gpu, unaligned bias");
    EXPECT_EQ(g.lt.fallbacks(), fallbacks_before + 1);
  }
  EXPECT_GE(g.lt.fallbacks(), expected_fallbacks);
}

// A cached plan serves every call of its shape, each with its own bias: the pointer is set per
// call, not frozen in the plan (two layers of one shape). Both biases live at once, so the
// second call's pointer really differs from the first's.
TEST(GemmBiasGpu, ACachedPlanTakesEachCallsBias) {
  CUTRAIN_REQUIRE_GPU();
  GpuExec g;
  const Device d = Device::cuda(0);
  const Problem p = make(kCases[0], 21);
  std::vector<float> other_bias(p.bias.size());
  for (std::size_t j = 0; j < other_bias.size(); ++j) other_bias[j] = 1.0F - p.bias[j];
  Buffer a(p.a.size() * sizeof(float), d), b(p.b.size() * sizeof(float), d),
      bias1(p.bias.size() * sizeof(float), d), bias2(p.bias.size() * sizeof(float), d),
      c(p.want.size() * sizeof(float), d);
  copy_bytes(a.data(), d, p.a.data(), Device::cpu(), a.bytes());
  copy_bytes(b.data(), d, p.b.data(), Device::cpu(), b.bytes());
  copy_bytes(bias1.data(), d, p.bias.data(), Device::cpu(), bias1.bytes());
  copy_bytes(bias2.data(), d, other_bias.data(), Device::cpu(), bias2.bytes());
  std::vector<float> got(p.want.size());
  for (const bool second : {false, true}) {
    backend::gemm_bias(g.exec(), p.c.trans_a, p.c.trans_b, p.c.m, p.c.n, p.c.k, a.as<float>(),
                       p.lda, b.as<float>(), p.ldb, c.as<float>(), p.c.n,
                       (second ? bias2 : bias1).as<float>());
    g.stream.synchronize();
    copy_bytes(got.data(), Device::cpu(), c.data(), d, c.bytes());
    Problem want = p;
    if (second)
      for (std::size_t i = 0; i < want.want.size(); ++i) {
        const std::size_t j = i % static_cast<std::size_t>(p.c.n);
        want.want[i] += static_cast<double>(other_bias[j]) - p.bias[j];
      }
    expect_close(want, got, second ? "second bias" : "first bias");
  }
  EXPECT_EQ(g.lt.fused_calls(), 2);
}

// The fused path and the two-pass path (what CUTRAIN_CUBLASLT=0 selects) agree to the GEMM's
// rounding; switching it off by the environment really switches it off.
TEST(GemmBiasGpu, EnvironmentSwitchesTheEpilogueOff) {
  CUTRAIN_REQUIRE_GPU();
  const char* saved = std::getenv("CUTRAIN_CUBLASLT");
  const std::string restore = saved != nullptr ? saved : "";
  setenv("CUTRAIN_CUBLASLT", "0", 1);
  GpuExec off;
  if (saved != nullptr)
    setenv("CUTRAIN_CUBLASLT", restore.c_str(), 1);
  else
    unsetenv("CUTRAIN_CUBLASLT");
  EXPECT_FALSE(off.lt.enabled());
  GpuExec on;
  const Problem p = make(kCases[0], 11);
  const std::vector<float> two_pass = run(off.exec(), p, 0, &off.stream),
                           fused = run(on.exec(), p, 0, &on.stream);
  EXPECT_EQ(off.lt.fused_calls(), 0);
  expect_close(p, two_pass, "two passes");
  expect_close(p, fused, "fused");
}
#endif

}  // namespace
}  // namespace cutrain::nn
