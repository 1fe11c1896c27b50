#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

constexpr std::size_t kAbsurd = std::size_t{1} << 60;  // an exabyte: no machine has it

TEST(Buffer, CpuAllocationIsAlignedAndZeroable) {
  Buffer b(1000, Device::cpu());
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kBufferAlignment, 0u);
  EXPECT_EQ(b.bytes(), 1000u);
  std::memset(b.data(), 0xAB, b.bytes());
  b.zero();
  const auto* bytes = b.as<unsigned char>();
  for (std::size_t i = 0; i < b.bytes(); ++i) ASSERT_EQ(bytes[i], 0) << i;
}

TEST(Buffer, MoveTransfersOwnership) {
  Buffer a(64, Device::cpu());
  void* p = a.data();
  Buffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is defined
  EXPECT_EQ(a.bytes(), 0u);
  Buffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
}

TEST(Buffer, ZeroBytesIsEmpty) {
  Buffer b(0, Device::cpu());
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_NO_THROW(b.zero());
}

TEST(Buffer, CpuOutOfMemoryThrowsClearly) {
  try {
    Buffer b(kAbsurd, Device::cpu());
    FAIL() << "expected cutrain::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("src/core/buffer.cpp:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Buffer(SIZE_MAX, Device::cpu()), Error);
  Buffer after(1024, Device::cpu());  // the allocator still works
  EXPECT_NE(after.data(), nullptr);
}

TEST(Buffer, CpuCopyBytes) {
  std::vector<int> src(100);
  std::iota(src.begin(), src.end(), 7);
  Buffer b(src.size() * sizeof(int), Device::cpu());
  copy_bytes(b.data(), Device::cpu(), src.data(), Device::cpu(), b.bytes());
  EXPECT_EQ(std::memcmp(b.data(), src.data(), b.bytes()), 0);
  EXPECT_THROW(copy_bytes(nullptr, Device::cpu(), src.data(), Device::cpu(), 4), Error);
}

TEST(PinnedBuffer, PinnedExactlyWhenAGpuIsUsable) {
  PinnedBuffer p(4096);
  ASSERT_NE(p.data(), nullptr);
  EXPECT_EQ(p.pinned(), cuda_status().usable);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p.data()) % 16, 0u);
}

TEST(Buffer, UnusableDeviceThrows) {
  const CudaStatus& s = cuda_status();
  // Without a GPU cuda:0 is unusable; with one, an ordinal past the last device is.
  EXPECT_THROW(Buffer(16, Device::cuda(s.usable ? s.device_count : 0)), Error);
}

TEST(BufferGpu, RoundTripThroughDevice) {
  CUTRAIN_REQUIRE_GPU();
  std::vector<float> src(1 << 16);
  std::iota(src.begin(), src.end(), -1000.0F);
  Buffer d(src.size() * sizeof(float), Device::cuda(0));
  PinnedBuffer h(src.size() * sizeof(float));
  copy_bytes(d.data(), d.device(), src.data(), Device::cpu(), d.bytes());
  copy_bytes(h.data(), Device::cpu(), d.data(), d.device(), d.bytes());
  EXPECT_EQ(std::memcmp(h.data(), src.data(), d.bytes()), 0);
  d.zero();
  copy_bytes(h.data(), Device::cpu(), d.data(), d.device(), d.bytes());
  for (std::size_t i = 0; i < src.size(); ++i) ASSERT_EQ(h.as<float>()[i], 0.0F);
}

TEST(BufferGpu, OutOfMemoryThrowsAndRecovers) {
  CUTRAIN_REQUIRE_GPU();
  try {
    Buffer b(kAbsurd, Device::cuda(0));
    FAIL() << "expected cutrain::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
  // The failure must not poison the context: the next allocation and copy work.
  Buffer ok(1 << 20, Device::cuda(0));
  EXPECT_NO_THROW(ok.zero());
}

}  // namespace
}  // namespace cutrain
