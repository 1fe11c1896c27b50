// (Built where cuRAND is: Dropout's draws come from its Philox stream.)
// The layer element-wise kernels' two paths (16-byte vectors with a scalar tail, or scalar when a
// pointer is not 16-byte aligned) apply the same rule per element: on the GPU they must give the
// same bits as each other for every activation, and the same bits as the CPU loop wherever both
// backends evaluate identical arithmetic (ReLU, leaky ReLU, the bias add, dropout, products; the
// transcendental activations differ between glibc and CUDA by design).
#include <gtest/gtest.h>

#include <curand.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cutrain/buffer.hpp"
#include "src/nn/backend.hpp"
#include "support/gpu.hpp"

namespace cutrain::nn {
namespace {

using backend::Exec;

// n floats of `host` placed `offset` floats into a fresh buffer on `d`: offset 1 misaligns it.
struct Placed {
  Buffer buffer;
  float* data;
  Placed(const std::vector<float>& host, std::size_t offset, Device d)
      : buffer((host.size() + 4) * sizeof(float), d), data(buffer.as<float>() + offset) {
    copy_bytes(data, d, host.data(), Device::cpu(), host.size() * sizeof(float));
  }
  std::vector<float> read(std::size_t n, Device d) const {
    std::vector<float> out(n);
    copy_bytes(out.data(), Device::cpu(), data, d, n * sizeof(float));
    return out;
  }
};

std::vector<float> random(std::size_t n, std::uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> out(v.size());
  std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
  return out;
}

// Every op on device d with its arrays `offset` floats from a 16-byte boundary.
struct Results {
  std::vector<std::vector<float>> activations;  // forward and backward per kind
  std::vector<float> bias_add, bias_add_ragged, dropout, mask, product;
  // Note [replica rows]: rank 1 of 3, rows of 128 values (whole vectors) and of 315 (not)
  std::vector<float> replica_aligned, replica_ragged;
};

// The dropout draws come from stream position `position` (Note [dropout from the counter]), as
// a count in the device's memory times a stride (Note [forward count in device memory]).
Results run(Device d, std::size_t offset, std::uint64_t position = 4096) {
  constexpr std::size_t n = 4099;  // 1024 vectors and a tail of 3
  const Exec e{d, nullptr, nullptr};
  const std::vector<float> xs = random(n, 1, -3, 3), dys = random(n, 2, -1, 1);
  Results r;
  for (int kind = 0; kind <= static_cast<int>(rules::Activation::kElu); ++kind) {
    const auto a = static_cast<rules::Activation>(kind);
    Placed x(xs, offset, d), y(std::vector<float>(n), offset, d), dy(dys, offset, d),
        dx(std::vector<float>(n), offset, d);
    backend::activation_forward(e, a, 0.05F, x.data, y.data, n);
    backend::activation_backward(e, a, 0.05F, x.data, y.data, dy.data, dx.data, n);
    r.activations.push_back(y.read(n, d));
    r.activations.push_back(dx.read(n, d));
  }
  const std::vector<float> bias = random(64, 3, -1, 1);
  Placed y(xs, offset, d), b(bias, offset, d);
  backend::add_bias(e, y.data, b.data, 64, 64);  // 64 columns: the vector path when aligned
  r.bias_add = y.read(64 * 64, d);
  Placed y2(xs, offset, d);
  backend::add_bias(e, y2.data, b.data, 409, 10);  // 10 columns: always scalar
  r.bias_add_ragged = y2.read(4090, d);
  Placed u(std::vector<float>(n), offset, d), x(xs, offset, d),
      out(std::vector<float>(n), offset, d);
  const std::uint64_t stride = position % 4 == 0 ? 4 : 1, count = position / stride;
  Buffer counter(sizeof(count), d);
  copy_bytes(counter.data(), d, &count, Device::cpu(), sizeof(count));
  backend::dropout_forward(e, 7, counter.as<std::uint64_t>(), stride,
                           rules::dropout_rows(n, 1, 0, 1), u.data, x.data, out.data, n, 0.3F);
  r.dropout = out.read(n, d);
  r.mask = u.read(n, d);
  for (const std::size_t cols : {std::size_t{128}, std::size_t{315}}) {
    const std::size_t rows = n / cols, m = rows * cols;
    Placed ru(std::vector<float>(m), offset, d), ry(std::vector<float>(m), offset, d);
    backend::dropout_forward(e, 7, counter.as<std::uint64_t>(), 3 * stride,
                             rules::dropout_rows(m, rows, 1, 3), ru.data, x.data, ry.data, m, 0.3F);
    (cols == 128 ? r.replica_aligned : r.replica_ragged) = ry.read(m, d);
  }
  Placed p(std::vector<float>(n), offset, d);
  backend::multiply(e, x.data, out.data, p.data, n);
  r.product = p.read(n, d);
  return r;
}

// The harness on the CPU, where the loops have one path: alignment changes nothing either.
TEST(Elementwise, CpuLoopsGiveTheSameBitsAtAnyAlignment) {
  const Results a = run(Device::cpu(), 0), b = run(Device::cpu(), 1);
  for (std::size_t k = 0; k < a.activations.size(); ++k)
    EXPECT_EQ(bits(a.activations[k]), bits(b.activations[k])) << k;
  EXPECT_EQ(bits(a.bias_add), bits(b.bias_add));
  EXPECT_EQ(bits(a.dropout), bits(b.dropout));
  EXPECT_EQ(bits(a.product), bits(b.product));
  EXPECT_EQ(bits(a.replica_aligned), bits(b.replica_aligned));
  EXPECT_EQ(bits(a.replica_ragged), bits(b.replica_ragged));
  EXPECT_EQ(a.dropout[0], a.mask[0] * random(1, 1, -3, 3)[0]);  // y = mask x, mask 0 or 1/(1-p)
}

// Note [dropout from the counter]: the mask of element i is the inverted-dropout mask of
// number position + i of cuRAND's Philox stream for the layer's seed - curandGenerateUniform's
// output, from cuRAND's own host generator - at stream positions on and off the 4-number blocks.
TEST(Elementwise, DropoutMasksAreCuRandsUniforms) {
  const float p = 0.3F;
  for (const std::uint64_t position : {0ULL, 3ULL, 4096ULL, 262145ULL, (1ULL << 34) + 1}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{6}, std::size_t{70001}}) {
      curandGenerator_t g = nullptr;
      ASSERT_EQ(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10),
                CURAND_STATUS_SUCCESS);
      curandSetPseudoRandomGeneratorSeed(g, 99);
      curandSetGeneratorOffset(g, position);
      std::vector<float> uniforms(n);
      ASSERT_EQ(curandGenerateUniform(g, uniforms.data(), n), CURAND_STATUS_SUCCESS);
      curandDestroyGenerator(g);

      const std::vector<float> xs = random(n, 5, -2, 2);
      std::vector<float> mask(n), y(n);
      // position = count x stride (262145 = 52429 x 5)
      const std::uint64_t stride = position > 0 && position % 5 == 0 ? 5 : 1;
      const std::uint64_t count = position / stride;
      backend::dropout_forward({Device::cpu()}, 99, &count, stride, rules::dropout_rows(n, 1, 0, 1),
                               mask.data(), xs.data(), y.data(), n, p);
      for (std::size_t i = 0; i < n; ++i) {
        const float want = uniforms[i] > p ? 1.0F / (1.0F - p) : 0.0F;
        ASSERT_EQ(mask[i], want) << "position " << position << " i " << i;
        ASSERT_EQ(y[i], xs[i] * want) << "position " << position << " i " << i;
      }
    }
  }
}

// Note [replica rows]: rank r of W draws, for its row j, the numbers of row j W + r of the global
// batch - cuRAND's uniforms at position + (j W + r) F + f, F values a row - so the W ranks' masks
// are the one process's mask of the combined batch, dealt as DistributedSampler deals its rows.
TEST(Elementwise, AReplicasRowsDrawTheirGlobalRowsNumbers) {
  const float p = 0.5F;
  constexpr std::size_t kRows = 5, kWorld = 3;
  for (const std::size_t f : {std::size_t{1}, std::size_t{7}, std::size_t{64}}) {
    const std::size_t n = kRows * f;
    const std::uint64_t stride = kWorld * n, count = 2;  // the third forward of this batch size
    curandGenerator_t g = nullptr;
    ASSERT_EQ(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10),
              CURAND_STATUS_SUCCESS);
    curandSetPseudoRandomGeneratorSeed(g, 42);
    curandSetGeneratorOffset(g, count * stride);
    std::vector<float> global(kWorld * n);
    ASSERT_EQ(curandGenerateUniform(g, global.data(), global.size()), CURAND_STATUS_SUCCESS);
    curandDestroyGenerator(g);
    const std::vector<float> xs(n, 1.0F);
    for (std::size_t r = 0; r < kWorld; ++r) {
      std::vector<float> mask(n), y(n);
      backend::dropout_forward({Device::cpu()}, 42, &count, stride,
                               rules::dropout_rows(n, kRows, r, kWorld), mask.data(), xs.data(),
                               y.data(), n, p);
      for (std::size_t j = 0; j < kRows; ++j)
        for (std::size_t c = 0; c < f; ++c) {
          const float u = global[(j * kWorld + r) * f + c];
          ASSERT_EQ(mask[j * f + c], u > p ? 2.0F : 0.0F)
              << "F " << f << " rank " << r << " row " << j;
        }
    }
  }
}

TEST(ElementwiseGpu, VectorAndScalarPathsGiveTheSameBits) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const Results vec = run(gpu, 0), scalar = run(gpu, 1), cpu = run(Device::cpu(), 0);
  // A stream position off the 4-number blocks takes the kernel's per-lane path.
  const Results shifted = run(gpu, 0, 4097), shifted_cpu = run(Device::cpu(), 0, 4097);
  EXPECT_EQ(bits(shifted.dropout), bits(shifted_cpu.dropout));
  EXPECT_EQ(bits(shifted.mask), bits(shifted_cpu.mask));
  for (std::size_t k = 0; k < vec.activations.size(); ++k) {
    EXPECT_EQ(bits(vec.activations[k]), bits(scalar.activations[k]))
        << "activation " << k / 2 << (k % 2 ? " backward" : " forward");
    if (k < 4) {  // ReLU and leaky ReLU: exact on both backends
      EXPECT_EQ(bits(vec.activations[k]), bits(cpu.activations[k])) << "activation " << k / 2;
    }
  }
  for (const auto* r : {&scalar, &cpu}) {
    EXPECT_EQ(bits(vec.bias_add), bits(r->bias_add));
    EXPECT_EQ(bits(vec.bias_add_ragged), bits(r->bias_add_ragged));
    EXPECT_EQ(bits(vec.dropout), bits(r->dropout));
    EXPECT_EQ(bits(vec.mask), bits(r->mask));
    EXPECT_EQ(bits(vec.product), bits(r->product));
    EXPECT_EQ(bits(vec.replica_aligned), bits(r->replica_aligned));
    EXPECT_EQ(bits(vec.replica_ragged), bits(r->replica_ragged));
  }
}

}  // namespace
}  // namespace cutrain::nn
