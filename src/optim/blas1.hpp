#pragma once
// BLAS level 1 over whole arenas on their device (OpenBLAS on the CPU, cuBLAS on CUDA), for the
// second-order optimizers. Reductions return to the host: L-BFGS and Newton-CG branch on them,
// so on CUDA each is a synchronization, inherent to those algorithms.

#include <cblas.h>

#include <cmath>
#include <memory>

#include "cutrain/arena.hpp"
#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"
#if CUTRAIN_WITH_CUDA
#include "src/cuda/check.hpp"
#include "src/cuda/handles.hpp"
#endif

namespace cutrain::optim {

struct Blas1 {
  Device device;
#if CUTRAIN_WITH_CUDA
  std::unique_ptr<detail::CublasHandle> handle;
#endif
  explicit Blas1(Device d) : device(d) {
#if CUTRAIN_WITH_CUDA
    if (d.is_cuda()) handle = std::make_unique<detail::CublasHandle>(d.ordinal());
#endif
  }
  int n(const Arena& a) const {
    return static_cast<int>(a.total());
  }
  double dot(const Arena& a, const Arena& b) {
    if (device.is_cpu()) return cblas_sdot(n(a), a.data(), 1, b.data(), 1);
    float r = 0;
#if CUTRAIN_WITH_CUDA
    detail::cuda::DeviceGuard g(device.ordinal());
    CUTRAIN_CUBLAS_CHECK(cublasSdot(handle->get(), n(a), a.data(), 1, b.data(), 1, &r));
#endif
    return r;
  }
  void axpy(double alpha, const Arena& x, Arena& y) {  // y += alpha x
    const auto a = static_cast<float>(alpha);
    if (device.is_cpu()) return cblas_saxpy(n(x), a, x.data(), 1, y.data(), 1);
#if CUTRAIN_WITH_CUDA
    detail::cuda::DeviceGuard g(device.ordinal());
    CUTRAIN_CUBLAS_CHECK(cublasSaxpy(handle->get(), n(x), &a, x.data(), 1, y.data(), 1));
#endif
  }
  void scal(double alpha, Arena& x) {
    const auto a = static_cast<float>(alpha);
    if (device.is_cpu()) return cblas_sscal(n(x), a, x.data(), 1);
#if CUTRAIN_WITH_CUDA
    detail::cuda::DeviceGuard g(device.ordinal());
    CUTRAIN_CUBLAS_CHECK(cublasSscal(handle->get(), n(x), &a, x.data(), 1));
#endif
  }
  double amax(const Arena& x) {  // max |x_i|
    if (device.is_cpu()) {
      const auto i = cblas_isamax(n(x), x.data(), 1);
      return std::fabs(x.data()[i]);
    }
    [[maybe_unused]] int i = 1;
    float v = 0;
#if CUTRAIN_WITH_CUDA
    detail::cuda::DeviceGuard g(device.ordinal());
    CUTRAIN_CUBLAS_CHECK(cublasIsamax(handle->get(), n(x), x.data(), 1, &i));  // 1-based
    copy_bytes(&v, Device::cpu(), x.data() + (i - 1), device, sizeof(float));
#endif
    return std::fabs(v);
  }
  double nrm2(const Arena& x) {
    if (device.is_cpu()) return cblas_snrm2(n(x), x.data(), 1);
    float r = 0;
#if CUTRAIN_WITH_CUDA
    detail::cuda::DeviceGuard g(device.ordinal());
    CUTRAIN_CUBLAS_CHECK(cublasSnrm2(handle->get(), n(x), x.data(), 1, &r));
#endif
    return r;
  }
  double asum(const Arena& x) {
    if (device.is_cpu()) return cblas_sasum(n(x), x.data(), 1);
    float r = 0;
#if CUTRAIN_WITH_CUDA
    detail::cuda::DeviceGuard g(device.ordinal());
    CUTRAIN_CUBLAS_CHECK(cublasSasum(handle->get(), n(x), x.data(), 1, &r));
#endif
    return r;
  }
};

}  // namespace cutrain::optim
