#include <gtest/gtest.h>

#include "cutrain/device.hpp"
#include "cutrain/error.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

TEST(Device, ParsesCanonicalNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("gpu"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::parse("cuda:3").ordinal(), 3);
  EXPECT_EQ(Device::cuda(7).str(), "cuda:7");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::parse(Device::cuda(12).str()), Device::cuda(12));
}

TEST(Device, RejectsMalformedNames) {
  for (const char* bad : {"", "cuda:", "cuda:-1", "cuda:1x", "tpu", "CUDA", "cuda:99999999999"}) {
    EXPECT_THROW(Device::parse(bad), Error) << bad;
  }
  try {
    Device::parse("tpu");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected cpu, cuda or cuda:N"), std::string::npos);
  }
}

TEST(Device, StatusIsConsistent) {
  const CudaStatus& s = cuda_status();
  EXPECT_EQ(s.compiled, CUTRAIN_WITH_CUDA != 0);
  if (s.usable) {
    EXPECT_TRUE(s.reason.empty());
    EXPECT_GT(s.device_count, 0);
    EXPECT_EQ(default_device(), Device::cuda(0));
  } else {
    EXPECT_FALSE(s.reason.empty()) << "an unusable GPU must say why";
    EXPECT_EQ(default_device(), Device::cpu());
  }
  if (s.compiled) {
    EXPECT_GE(s.runtime_version, 12000);
  }
}

TEST(Device, CpuIsAlwaysUsable) {
  EXPECT_NO_THROW(require_usable(Device::cpu()));
  EXPECT_NE(describe(Device::cpu()).find("OpenMP threads"), std::string::npos);
}

// Both machines assert something: without a GPU, cuda:0 is refused with the discovery reason;
// with one, an ordinal past the last device is refused, naming the count.
TEST(Device, RequireUsableExplainsRefusals) {
  const CudaStatus& s = cuda_status();
  const Device bad = s.usable ? Device::cuda(s.device_count + 5) : Device::cuda(0);
  try {
    require_usable(bad);
    FAIL() << "expected cutrain::Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(bad.str()), std::string::npos) << what;
    EXPECT_NE(what.find(s.usable ? "does not exist" : s.reason), std::string::npos) << what;
  }
}

TEST(DeviceGpu, BadOrdinalThrows) {
  CUTRAIN_REQUIRE_GPU();
  const int count = cuda_status().device_count;
  try {
    require_usable(Device::cuda(count + 5));
    FAIL() << "expected cutrain::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_THROW(require_usable(Device::cuda(-1)), Error);
}

TEST(DeviceGpu, PropertiesAreReadable) {
  CUTRAIN_REQUIRE_GPU();
  const CudaDeviceProperties p = cuda_properties(0);
  EXPECT_FALSE(p.name.empty());
  EXPECT_GT(p.multiprocessors, 0);
  EXPECT_GE(p.compute_major, 8);
  EXPECT_NE(describe(Device::cuda(0)).find(p.name), std::string::npos);
}

}  // namespace
}  // namespace cutrain
