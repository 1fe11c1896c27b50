#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/error.hpp"
#include "support/gpu.hpp"
#include "support/random.hpp"

namespace cutrain {
namespace {

std::shared_ptr<const ArenaLayout> mlp_layout() {
  ArenaLayout::Builder b;
  b.add("layers.0.weight", {128, 784}, /*group=*/0);
  b.add("layers.0.bias", {128}, /*group=*/1);
  b.add("layers.2.weight", {10, 128}, /*group=*/0);
  b.add("layers.2.bias", {10}, /*group=*/1);
  return b.build();
}

TEST(ArenaLayout, OffsetsAreAlignedAndGroupedInOrder) {
  const auto layout = mlp_layout();
  const auto& t = layout->tensors();
  ASSERT_EQ(t.size(), 4u);
  // Insertion order is kept for indices and names.
  EXPECT_EQ(t[0].name, "layers.0.weight");
  EXPECT_EQ(t[3].name, "layers.2.bias");
  // Group 0 first (weights in insertion order), then group 1; each start 64-element aligned.
  const std::size_t w0 = 128 * 784;  // 100352 = 1568 * 64, already aligned
  const std::size_t w2 = 10 * 128;   // 1280 = 20 * 64
  EXPECT_EQ(t[0].offset, 0u);
  EXPECT_EQ(t[2].offset, w0);
  EXPECT_EQ(t[1].offset, w0 + w2);
  EXPECT_EQ(t[3].offset, w0 + w2 + 128);  // 128 is a multiple of 64
  EXPECT_EQ(layout->total(), w0 + w2 + 128 + 64);
  for (const auto& s : t) EXPECT_EQ(s.offset % kArenaAlignment, 0u) << s.name;
  EXPECT_EQ(layout->total() % kArenaAlignment, 0u);
  EXPECT_EQ(layout->parameter_count(), w0 + w2 + 128 + 10);
  ASSERT_EQ(layout->groups().size(), 2u);
  EXPECT_EQ(layout->groups()[0].group, 0);
  EXPECT_EQ(layout->groups()[0].begin, 0u);
  EXPECT_EQ(layout->groups()[0].end, w0 + w2);
  EXPECT_EQ(layout->groups()[1].begin, w0 + w2);
  EXPECT_EQ(layout->groups()[1].end, layout->total());
}

TEST(ArenaLayout, OddSizesArePadded) {
  ArenaLayout::Builder b;
  b.add("a", {3});
  b.add("b", {65});
  b.add("c", {1, 1, 1});
  const auto layout = b.build();
  EXPECT_EQ(layout->tensors()[1].offset, 64u);
  EXPECT_EQ(layout->tensors()[2].offset, 64u + 128u);
  EXPECT_EQ(layout->total(), 64u + 128u + 64u);
  EXPECT_EQ(layout->at("b").numel, 65u);
  EXPECT_FALSE(layout->find("zzz").has_value());
  EXPECT_THROW(layout->at("zzz"), Error);
}

TEST(ArenaLayout, RejectsBadTensors) {
  ArenaLayout::Builder b;
  b.add("w", {2, 2});
  EXPECT_THROW(b.add("w", {3}), Error);                        // duplicate
  EXPECT_THROW(b.add("", {3}), Error);                         // empty name
  EXPECT_THROW(b.add("z", {0, 3}), Error);                     // zero dim
  EXPECT_THROW(b.add("n", {-4}), Error);                       // negative
  EXPECT_THROW(b.add("g", {4}, -1), Error);                    // negative group
  EXPECT_THROW(b.add("huge", {INT64_MAX, INT64_MAX}), Error);  // overflow
  try {
    b.add("z", {5, 0});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[5, 0]"), std::string::npos) << e.what();
  }
}

TEST(ArenaLayout, EqualityComparesStructure) {
  EXPECT_TRUE(*mlp_layout() == *mlp_layout());
  ArenaLayout::Builder b;
  b.add("layers.0.weight", {128, 784});
  EXPECT_FALSE(*mlp_layout() == *b.build());
}

TEST(Arena, ZeroFilledViewsAndHostRoundTrip) {
  Arena a(mlp_layout(), Device::cpu());
  const std::vector<float> all = a.to_host();
  ASSERT_EQ(all.size(), a.total());
  for (const float x : all) ASSERT_EQ(x, 0.0F);

  const auto bias = testing::uniform_values(10, -1, 1, 42);
  a.tensor_from_host("layers.2.bias", bias);
  EXPECT_EQ(a.tensor_to_host("layers.2.bias"), bias);
  TensorView v = a.view("layers.2.bias");
  EXPECT_EQ(v.data, a.data() + a.layout().at("layers.2.bias").offset);
  EXPECT_EQ(v.numel, 10u);
  EXPECT_EQ(v.shape, Shape{10});
  EXPECT_EQ(a.view(3).data, v.data);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.view(1).data) % 256, 0u);
  // The padding after the bias is untouched.
  const std::vector<float> after = a.to_host();
  const std::size_t off = a.layout().at("layers.2.bias").offset;
  for (std::size_t i = off + 10; i < a.total(); ++i) ASSERT_EQ(after[i], 0.0F);

  EXPECT_THROW(a.tensor_from_host("layers.2.bias", std::vector<float>(9)), Error);
  EXPECT_THROW(a.view(4), Error);
  EXPECT_THROW(a.view("nope"), Error);
}

TEST(Arena, CopiesRequireTheSameLayout) {
  Arena a(mlp_layout(), Device::cpu());
  a.from_host(testing::uniform_values(a.total(), -2, 2, 7));
  Arena b = a.copy_to(Device::cpu());
  EXPECT_EQ(b.to_host(), a.to_host());
  EXPECT_NE(b.data(), a.data());
  Arena g = a.like();
  EXPECT_EQ(g.layout_ptr(), a.layout_ptr());
  for (const float x : g.to_host()) ASSERT_EQ(x, 0.0F);
  g.copy_from(a);
  EXPECT_EQ(g.to_host(), a.to_host());

  ArenaLayout::Builder other;
  other.add("x", {5});
  Arena c(other.build(), Device::cpu());
  EXPECT_THROW(c.copy_from(a), Error);
  EXPECT_THROW(require_same_layout(a, c, "test"), Error);
  EXPECT_NO_THROW(require_same_layout(a, g, "test"));
  EXPECT_THROW(a.from_host(std::vector<float>(3)), Error);
}

TEST(ArenaGpu, CopyToDeviceAndBackIsExact) {
  CUTRAIN_REQUIRE_GPU();
  Arena a(mlp_layout(), Device::cpu());
  a.from_host(testing::uniform_values(a.total(), -3, 3, 11));
  Arena d = a.copy_to(Device::cuda(0));
  EXPECT_EQ(d.device(), Device::cuda(0));
  EXPECT_EQ(d.to_host(), a.to_host());
  EXPECT_EQ(d.tensor_to_host("layers.0.bias"), a.tensor_to_host("layers.0.bias"));
  Arena d2 = d.like();
  d2.copy_from(d);  // device to device
  EXPECT_EQ(d2.copy_to(Device::cpu()).to_host(), a.to_host());
  EXPECT_THROW(require_same_layout(a, d, "test"), Error);  // same layout, other device
}

}  // namespace
}  // namespace cutrain
