#include "cutrain/device.hpp"

#include <omp.h>

#include <charconv>

#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda" || text == "gpu") return cuda(0);
  if (text.starts_with("cuda:")) {
    const std::string_view digits = text.substr(5);
    int ordinal = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ordinal);
    if (ec == std::errc() && end == digits.data() + digits.size() && ordinal >= 0 &&
        !digits.empty())
      return cuda(ordinal);
  }
  CUTRAIN_FAIL("unknown device '", text, "': expected cpu, cuda or cuda:N (N >= 0)");
}

std::string Device::str() const {
  return is_cpu() ? "cpu" : detail::cat("cuda:", ordinal_);
}

const CudaStatus& cuda_status() {
  // C++ guarantees thread-safe one-time initialization of function-local statics.
  static const CudaStatus status = detail::cuda::discover();
  return status;
}

Device default_device() {
  return cuda_status().usable ? Device::cuda(0) : Device::cpu();
}

void require_usable(Device device) {
  if (device.is_cpu()) return;
  const CudaStatus& s = cuda_status();
  CUTRAIN_CHECK(s.usable, "device ", device.str(), " is not usable: ", s.reason);
  CUTRAIN_CHECK(device.ordinal() >= 0 && device.ordinal() < s.device_count, "device ", device.str(),
                " does not exist: ", s.device_count,
                " CUDA device(s) are visible (cuda:0 .. cuda:", s.device_count - 1, ")");
  const CudaDeviceProperties p = detail::cuda::properties(device.ordinal());
  // The library carries machine code for sm_80 and sm_90 and PTX for compute_90.
  CUTRAIN_CHECK(p.compute_major >= 8, "device ", device.str(), " (", p.name,
                ") has compute capability ", p.compute_major, '.', p.compute_minor,
                "; cutrain needs 8.0 or newer (A100, H100, ...)");
}

std::string describe(Device device) {
  if (device.is_cpu()) return detail::cat("cpu (", omp_get_max_threads(), " OpenMP threads)");
  require_usable(device);
  const CudaDeviceProperties p = detail::cuda::properties(device.ordinal());
  return detail::cat(device.str(), " (", p.name, ", compute ", p.compute_major, '.',
                     p.compute_minor, ", ", p.multiprocessors, " SMs, ",
                     p.global_memory_bytes >> 20, " MiB)");
}

CudaDeviceProperties cuda_properties(int ordinal) {
  require_usable(Device::cuda(ordinal));
  return detail::cuda::properties(ordinal);
}

}  // namespace cutrain
