// The cuBLAS RAII owner.
#include <gtest/gtest.h>

#include "cutrain/buffer.hpp"
#include "cutrain/stream.hpp"
#include "src/cuda/handles.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

TEST(CublasHandleGpu, CreatesAndBindsStream) {
  CUTRAIN_REQUIRE_GPU();
  detail::CublasHandle h(0);
  EXPECT_NE(h.get(), nullptr);
  Stream s(Device::cuda(0));
  EXPECT_NO_THROW(h.set_stream(s.native()));
}

}  // namespace
}  // namespace cutrain
