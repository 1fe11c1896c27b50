// Note [host memory check]: what a CPU allocation may still take, and the refusal of one that
// exceeds it.
#include "src/core/host_memory.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"

namespace cutrain {
namespace {

constexpr std::uint64_t kKiB = 1024;

TEST(HostMemory, MeminfoAvailableIsMemAvailablePlusFreeSwap) {
  const std::string meminfo =
      "MemTotal:       24683792 kB\n"
      "MemFree:        24172600 kB\n"
      "MemAvailable:   23976316 kB\n"
      "Buffers:            2048 kB\n"
      "SwapTotal:       2097148 kB\n"
      "SwapFree:        1048576 kB\n";
  EXPECT_EQ(detail::meminfo_available(meminfo), (23976316 + 1048576) * kKiB);
  // No swap line: MemAvailable alone. No MemAvailable (kernels before 3.14): unknown.
  EXPECT_EQ(detail::meminfo_available("MemAvailable: 1000 kB\n"), 1000 * kKiB);
  EXPECT_EQ(detail::meminfo_available("MemTotal: 1000 kB\nMemFree: 10 kB\n"), std::nullopt);
  EXPECT_EQ(detail::meminfo_available(""), std::nullopt);
  // A field whose name only begins like the one looked for is another field.
  EXPECT_EQ(detail::meminfo_available("MemAvailableX: 5 kB\nMemAvailable: 7 kB\n"), 7 * kKiB);
  EXPECT_EQ(detail::meminfo_available("MemAvailable: lots\n"), std::nullopt);
}

TEST(HostMemory, CgroupAvailableIsTheLimitLessTheUsage) {
  EXPECT_EQ(detail::cgroup_available("8589934592\n", "1073741824\n"), 7 * (kKiB << 20));
  EXPECT_EQ(detail::cgroup_available("max\n", "1073741824\n"), std::nullopt);  // no limit
  EXPECT_EQ(detail::cgroup_available("100\n", "200\n"), 0U);  // over the limit already
  EXPECT_EQ(detail::cgroup_available("", ""), std::nullopt);  // no cgroup v2 files
}

TEST(HostMemory, MachineHasSomeMemoryAvailable) {
#ifdef __linux__
  const std::optional<std::uint64_t> available = detail::host_memory_available();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 0U);
#else
  GTEST_SKIP() << "reads /proc/meminfo: Linux only";
#endif
}

// The check refuses an allocation beyond what is available before the allocator is asked: its
// message says so (the allocator's own failure, or overcommit's success, would not).
TEST(HostMemory, AnAllocationBeyondWhatIsAvailableIsRefused) {
  const std::optional<std::uint64_t> available = detail::host_memory_available();
  if (!available) GTEST_SKIP() << "the available memory cannot be read here";
  // Half as much again: other processes freeing memory between the two reads cannot close it.
  const std::uint64_t bytes = *available + *available / 2 + (std::uint64_t{1} << 30);
  try {
    Buffer b(static_cast<std::size_t>(bytes), Device::cpu());
    FAIL() << "allocating " << bytes << " bytes with " << *available << " available succeeded";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("out of memory: allocating " + std::to_string(bytes) + " bytes"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("this machine has available"), std::string::npos) << what;
  }
  Buffer fits(detail::kCheckedBytes, Device::cpu());  // at the threshold, well within reach
  EXPECT_NE(fits.data(), nullptr);
}

}  // namespace
}  // namespace cutrain
