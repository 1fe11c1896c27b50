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
  Arena xother = xc.copy_to(Device::cpu());
  EXPECT_THROW(ops::axpy(1.0F, xother, yg), Error);  // devices differ
}

}  // namespace
}  // namespace cutrain
