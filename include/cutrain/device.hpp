#pragma once
// Devices and GPU discovery.
//
// A Device is a value: the CPU, or a CUDA ordinal. Discovery is done once per process and
// cached; it never throws. Asking to *use* a CUDA device that is not usable throws
// cutrain::Error naming why (no driver, a driver older than the runtime, no device, bad ordinal,
// or a cutrain built without CUDA).

#include <string>
#include <string_view>

namespace cutrain {

/// Where memory lives and work runs: the CPU or one CUDA device.
class Device {
 public:
  /// The backend.
  enum class Kind { kCpu, kCuda };  ///< the backend

  constexpr Device() = default;                                    ///< the CPU
  static constexpr Device cpu() { return Device(Kind::kCpu, 0); }  ///< the CPU backend
  /// CUDA device `ordinal` (not checked here: require_usable says whether it can run).
  static constexpr Device cuda(int ordinal = 0) { return Device(Kind::kCuda, ordinal); }
  /// Parses "cpu", "cuda", "cuda:N" (and "gpu" as "cuda"). Throws cutrain::Error otherwise.
  static Device parse(std::string_view text);

  constexpr Kind kind() const { return kind_; }       ///< CPU or CUDA
  constexpr int ordinal() const { return ordinal_; }  ///< the CUDA device's index (0 on the CPU)
  constexpr bool is_cpu() const { return kind_ == Kind::kCpu; }    ///< kind() == kCpu
  constexpr bool is_cuda() const { return kind_ == Kind::kCuda; }  ///< kind() == kCuda
  std::string str() const;                                         ///< "cpu" or "cuda:N"

  friend constexpr bool operator==(Device, Device) = default;  ///< same kind and ordinal

 private:
  constexpr Device(Kind kind, int ordinal) : kind_(kind), ordinal_(ordinal) {}
  Kind kind_ = Kind::kCpu;
  int ordinal_ = 0;
};

/// What discovery found. `usable` is true when at least one CUDA device can run our kernels.
struct CudaStatus {
  bool compiled = false;    ///< cutrain was built with CUTRAIN_CUDA=ON
  bool usable = false;      ///< at least one device can run cutrain's kernels
  int device_count = 0;     ///< CUDA devices the driver reports
  int driver_version = 0;   ///< e.g. 13000 for 13.0; 0 when no driver is installed
  int runtime_version = 0;  ///< the CUDA runtime cutrain was built against
  std::string reason;       ///< why no GPU is usable (empty when usable)
};

const CudaStatus& cuda_status();

/// The first usable GPU, else the CPU.
Device default_device();

/// Throws cutrain::Error unless `device` can be used now (CPU always can).
void require_usable(Device device);

/// Human-readable description: "cpu (8 OpenMP threads)" or "cuda:0 (NVIDIA H100 80GB HBM3, 132
/// SMs)".
std::string describe(Device device);

/// Properties the kernels size their grids by. Throws for the CPU or an unusable device.
struct CudaDeviceProperties {
  std::string name;                     ///< e.g. "NVIDIA H100 80GB HBM3"
  int multiprocessors = 0;              ///< SMs
  int compute_major = 0;                ///< compute capability, e.g. 9 of 9.0
  int compute_minor = 0;                ///< e.g. 0 of 9.0
  std::size_t global_memory_bytes = 0;  ///< device memory
};
CudaDeviceProperties cuda_properties(int ordinal);

}  // namespace cutrain
