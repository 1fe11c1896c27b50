// Dispatch of the element-wise ops: the one place that picks the CPU loop or the CUDA kernel.
#include "cutrain/error.hpp"
#include "cutrain/ops.hpp"
#include "kernels/ops/axpy.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/ops/ops.hpp"
#endif

namespace cutrain::ops {

void axpy(float alpha, const Arena& x, Arena& y, [[maybe_unused]] NativeStream stream) {
  require_same_layout(x, y, "ops::axpy");
  const std::size_t n = y.total();
  const float* xs = x.data();
  float* ys = y.data();
  if (y.device().is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t i) { ys[i] = rules::axpy(alpha, xs[i], ys[i]); });
  } else {
    CUTRAIN_ON_CUDA(detail::cuda::DeviceGuard guard(y.device().ordinal());
                    kernels::launch_axpy(alpha, xs, ys, n, stream));
  }
}

void lerp(float w, const Arena& end, Arena& self, [[maybe_unused]] NativeStream stream) {
  require_same_layout(end, self, "ops::lerp");
  const std::size_t n = self.total();
  const float* es = end.data();
  float* ss = self.data();
  if (self.device().is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t i) { ss[i] = rules::lerp(ss[i], es[i], w); });
  } else {
    CUTRAIN_ON_CUDA(detail::cuda::DeviceGuard guard(self.device().ordinal());
                    kernels::launch_lerp(w, es, ss, n, stream));
  }
}

void scale(float alpha, Arena& x, [[maybe_unused]] NativeStream stream) {
  CUTRAIN_CHECK(x.total() > 0, "ops::scale: arena is empty");
  const std::size_t n = x.total();
  float* xs = x.data();
  if (x.device().is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t i) { xs[i] = rules::scale(alpha, xs[i]); });
  } else {
    CUTRAIN_ON_CUDA(detail::cuda::DeviceGuard guard(x.device().ordinal());
                    kernels::launch_scale(alpha, xs, n, stream));
  }
}

}  // namespace cutrain::ops
