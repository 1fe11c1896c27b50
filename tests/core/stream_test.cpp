#include <gtest/gtest.h>

#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "cutrain/stream.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

TEST(Stream, CpuStreamAndEventAreInert) {
  Stream s(Device::cpu());
  EXPECT_EQ(s.native(), nullptr);
  EXPECT_NO_THROW(s.synchronize());
  Event e(Device::cpu());
  e.record(s.native());
  EXPECT_TRUE(e.ready());
  EXPECT_NO_THROW(e.synchronize());
  EXPECT_THROW(Event::elapsed_ms(e, e), Error);
}

TEST(StreamGpu, OrderedCopiesAndTiming) {
  CUTRAIN_REQUIRE_GPU();
  Stream s(Device::cuda(0));
  ASSERT_NE(s.native(), nullptr);
  Event start(Device::cuda(0), /*timing=*/true);
  Event stop(Device::cuda(0), /*timing=*/true);
  std::vector<float> host(1 << 20, 3.5F);
  PinnedBuffer pinned(host.size() * sizeof(float));
  std::copy(host.begin(), host.end(), pinned.as<float>());
  Buffer d(pinned.bytes(), Device::cuda(0));
  start.record(s.native());
  copy_bytes(d.data(), d.device(), pinned.data(), Device::cpu(), d.bytes(), s.native());
  stop.record(s.native());
  // A second stream waits on the event, then copies back: ordering without a host wait.
  Stream t(Device::cuda(0));
  stop.wait_on(t.native());
  std::vector<float> back(host.size());
  PinnedBuffer out(d.bytes());
  copy_bytes(out.data(), Device::cpu(), d.data(), d.device(), d.bytes(), t.native());
  t.synchronize();
  EXPECT_TRUE(stop.ready());
  EXPECT_GE(Event::elapsed_ms(start, stop), 0.0F);
  for (std::size_t i = 0; i < host.size(); ++i) ASSERT_EQ(out.as<float>()[i], 3.5F) << i;
}

}  // namespace
}  // namespace cutrain
