#pragma once
// Launch shapes for element-wise kernels.
//
// Element-wise kernels are memory-bound grid-stride loops. The grid is sized to what the device
// keeps resident at once (SMs x resident blocks per SM from the occupancy calculator), not to the
// element count: every thread then streams several 16-byte vectors with loads in flight, and one
// launch covers an arena of any size. The occupancy query is cached per kernel and device.

#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>

#include "kernels/common/grid.hpp"
#include "src/cuda/check.hpp"

namespace cutrain::kernels {

inline constexpr int kBlock = 256;
inline constexpr int kMaxDevices = 64;

// An attribute of the current device, queried once per device and attribute (the cache holds
// value + 1, so that 0 means not queried yet).
template <cudaDeviceAttr Attr>
int current_device_attribute() {
  static std::array<std::atomic<int>, kMaxDevices> cache{};
  int device = 0;
  CUTRAIN_CUDA_CHECK(cudaGetDevice(&device));
  const int known = device < kMaxDevices ? cache[device].load(std::memory_order_relaxed) : 0;
  if (known != 0) return known - 1;
  int value = 0;
  CUTRAIN_CUDA_CHECK(cudaDeviceGetAttribute(&value, Attr, device));
  if (device < kMaxDevices) cache[device].store(value + 1, std::memory_order_relaxed);
  return value;
}

template <auto Kernel>
int resident_grid(std::size_t work_items, int block = kBlock) {
  // The cache holds the residency at kBlock threads per block; another block size has its own
  // occupancy and is queried each time (no launch uses one today).
  static std::array<std::atomic<int>, kMaxDevices> cache{};
  int device = 0;
  CUTRAIN_CUDA_CHECK(cudaGetDevice(&device));
  const bool cached = block == kBlock && device < kMaxDevices;
  int full = cached ? cache[device].load(std::memory_order_relaxed) : 0;
  if (full == 0) {
    const int sms = current_device_attribute<cudaDevAttrMultiProcessorCount>();
    int per_sm = 0;
    CUTRAIN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, block, 0));
    full = std::max(1, sms * per_sm);
    if (cached) cache[device].store(full, std::memory_order_relaxed);
  }
  const std::size_t needed = (work_items + block - 1) / static_cast<std::size_t>(block);
  return static_cast<int>(std::clamp<std::size_t>(needed, 1, static_cast<std::size_t>(full)));
}

}  // namespace cutrain::kernels
