#pragma once
// Owning memory: Buffer (device or CPU memory) and PinnedBuffer (page-locked host memory).
//
// Both are move-only RAII types; a failed allocation throws cutrain::Error saying how many bytes
// were asked for on which device, and leaks nothing. CPU buffers are 256-byte aligned, like
// cudaMalloc's, so every arena view can take 16-byte vector loads on either backend.

#include <cstddef>
#include <cstdint>

#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"

namespace cutrain {

inline constexpr std::size_t kBufferAlignment = 256;

/// Owned device or host memory (RAII): cudaMalloc on a GPU, aligned memory on the CPU.
class Buffer {
 public:
  Buffer() = default;
  Buffer(std::size_t bytes, Device device);  ///< contents uninitialized
  ~Buffer();
  Buffer(Buffer&& other) noexcept;             ///< takes the memory; `other` is left empty
  Buffer& operator=(Buffer&& other) noexcept;  ///< frees this memory, then takes `other`'s
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() { return data_; }              ///< null when empty
  const void* data() const { return data_; }  ///< null when empty
  /// The memory as T* (no check: the caller knows what it stored).
  template <class T>
  T* as() {
    return static_cast<T*>(data_);
  }
  /// The memory as const T*.
  template <class T>
  const T* as() const {
    return static_cast<const T*>(data_);
  }
  std::size_t bytes() const { return bytes_; }  ///< the size asked for
  Device device() const { return device_; }     ///< where the memory lives

  /// Sets every byte to 0: on a GPU asynchronously on `stream` (null: the default stream).
  void zero(NativeStream stream = nullptr);

 private:
  void release() noexcept;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
};

/// Page-locked host memory for asynchronous host<->device copies. When no GPU is usable it falls
/// back to ordinary aligned memory (pinned() says which), so CPU-only runs use the same code path.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes);  ///< contents uninitialized
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& other) noexcept;  ///< takes the memory; `other` is left empty
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;  ///< frees this memory, takes `other`'s
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() { return data_; }              ///< null when empty
  const void* data() const { return data_; }  ///< null when empty
  /// The memory as T*.
  template <class T>
  T* as() {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const { return bytes_; }  ///< the size asked for
  bool pinned() const { return pinned_; }       ///< page-locked (false: the no-GPU fallback)

 private:
  void release() noexcept;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  bool pinned_ = false;
};

namespace detail {
/// How many non-empty Buffers this process has allocated (tests check that a steady-state
/// training step allocates nothing).
std::uint64_t buffer_allocations();
}  // namespace detail

/// Copies `bytes` between any two devices. With a null stream the copy is complete on return;
/// with a stream it is ordered on that stream (and asynchronous when the host side is pinned).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes,
                NativeStream stream = nullptr);

}  // namespace cutrain
