#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/error.hpp"
#include "cutrain/ops.hpp"
#include "support/gpu.hpp"
#include "support/random.hpp"

namespace cutrain {
namespace {

std::shared_ptr<const ArenaLayout> layout() {
  ArenaLayout::Builder b;
  b.add("w", {300, 301});
  b.add("b", {77});
  b.add("s", {1});
  return b.build();
}

// Fills the real elements (not the padding) with random values.
Arena random_arena(Device device, std::uint32_t seed) {
  Arena a(layout(), Device::cpu());
  for (const auto& t : a.layout().tensors())
    a.tensor_from_host(t.name, testing::uniform_values(t.numel, -4, 4, seed++));
  return a.copy_to(device);
}

// Independent reference: the exact value alpha*x + y in double, rounded once to float, is what a
// fused multiply-add returns except when double rounding intervenes (then 1 ulp).
void expect_axpy(const std::vector<float>& x, const std::vector<float>& y0,
                 const std::vector<float>& y, float alpha) {
  ASSERT_EQ(x.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float ref = static_cast<float>(static_cast<double>(alpha) * x[i] + y0[i]);
    ASSERT_LE(std::fabs(y[i] - ref), std::fabs(ref) * 1.2e-7F + 1e-30F) << "at " << i;
  }
}

TEST(Axpy, CpuMatchesReferenceAndKeepsPaddingZero) {
  Arena x = random_arena(Device::cpu(), 1);
  Arena y = random_arena(Device::cpu(), 100);
  const auto y0 = y.to_host();
  ops::axpy(-0.37F, x, y);
  const auto y1 = y.to_host();
  expect_axpy(x.to_host(), y0, y1, -0.37F);
  const auto& s = y.layout().at("s");
  for (std::size_t i = s.offset + 1; i < y.total(); ++i) ASSERT_EQ(y1[i], 0.0F);
}

TEST(Axpy, ScaleIsExactMultiply) {
  Arena x = random_arena(Device::cpu(), 5);
  const auto x0 = x.to_host();
  ops::scale(0.5F, x);  // a power of two: exact
  const auto x1 = x.to_host();
  for (std::size_t i = 0; i < x0.size(); ++i) ASSERT_EQ(x1[i], x0[i] * 0.5F);
}

// torch.lerp's two forms, each a fused multiply-add after the float end - self both share:
// against that value in double rounded to float (1 ulp apart at most where the double sum itself
// rounds), and the endpoints exactly: w = 0 keeps self, w = 1 gives end (the second form's
// point: end - diff * 0).
TEST(Axpy, LerpIsTorchsLerp) {
  Arena end = random_arena(Device::cpu(), 7);
  for (const float w : {0.001F, 0.25F, 0.5F, 0.9F}) {
    Arena self = random_arena(Device::cpu(), 70);
    const auto s0 = self.to_host(), e = end.to_host();
    ops::lerp(w, end, self);
    const auto s1 = self.to_host();
    for (std::size_t i = 0; i < s0.size(); ++i) {
      const auto diff = static_cast<double>(e[i] - s0[i]);  // float subtraction, as torch's
      const double exact = w < 0.5F ? s0[i] + static_cast<double>(w) * diff
                                    : e[i] - diff * static_cast<double>(1.0F - w);
      const auto ref = static_cast<float>(exact);
      ASSERT_LE(std::fabs(s1[i] - ref), std::fabs(ref) * 1.2e-7F + 1e-30F) << "w " << w << " " << i;
    }
  }
  Arena self = random_arena(Device::cpu(), 71);
  const auto s0 = self.to_host();
  ops::lerp(0.0F, end, self);
  EXPECT_EQ(self.to_host(), s0);
  ops::lerp(1.0F, end, self);
  EXPECT_EQ(self.to_host(), end.to_host());
}

TEST(Axpy, RejectsMismatchedArenas) {
  Arena x = random_arena(Device::cpu(), 1);
  ArenaLayout::Builder b;
  b.add("other", {10});
  Arena y(b.build(), Device::cpu());
  try {
    ops::axpy(1.0F, x, y);
    FAIL() << "expected cutrain::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ops::axpy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("different layouts"), std::string::npos) << e.what();
  }
  Arena empty;
  EXPECT_THROW(ops::scale(2.0F, empty), Error);
}

TEST(AxpyGpu, GpuMatchesCpuBitForBit) {
  CUTRAIN_REQUIRE_GPU();
  Arena xc = random_arena(Device::cpu(), 1);
  Arena yc = random_arena(Device::cpu(), 100);
  Arena xg = xc.copy_to(Device::cuda(0));
  Arena yg = yc.copy_to(Device::cuda(0));
  const auto y0 = yc.to_host();
  ops::axpy(1.7F, xc, yc);
  ops::axpy(1.7F, xg, yg);
  expect_axpy(xc.to_host(), y0, yg.to_host(), 1.7F);
  EXPECT_EQ(yg.to_host(), yc.to_host()) << "CPU and GPU must run the same rule bit for bit";
  ops::scale(-3.0F, yg);
  ops::scale(-3.0F, yc);
  EXPECT_EQ(yg.to_host(), yc.to_host());
  for (const float w : {0.001F, 0.75F}) {
    ops::lerp(w, xg, yg);
    ops::lerp(w, xc, yc);
    EXPECT_EQ(yg.to_host(), yc.to_host()) << "lerp " << w;
  }
  Arena xother = xc.copy_to(Device::cpu());
  EXPECT_THROW(ops::axpy(1.0F, xother, yg), Error);  // devices differ
}

}  // namespace
}  // namespace cutrain
