#include "cutrain/buffer.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "cutrain/error.hpp"
#include "src/core/host_memory.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain {
namespace {

std::atomic<std::uint64_t> g_allocations{0};

// "6.1 GiB", rounded down to a tenth.
std::string gib(std::uint64_t bytes) {
  const std::uint64_t tenths = bytes / ((std::uint64_t{1} << 30) / 10);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " GiB";
}

void* cpu_alloc(std::size_t bytes) {
  // aligned_alloc wants a size that is a multiple of the alignment; guard the round-up overflow.
  CUTRAIN_CHECK(bytes <= SIZE_MAX - kBufferAlignment, "out of memory: cannot allocate ", bytes,
                " bytes on cpu");
  // Note [host memory check]: refused here rather than killed by the kernel when it is touched.
  if (bytes >= detail::kCheckedBytes) {
    const std::optional<std::uint64_t> available = detail::host_memory_available();
    CUTRAIN_CHECK(!available || bytes <= *available, "out of memory: allocating ", bytes,
                  " bytes (", gib(bytes), ") on cpu would take more than the ", gib(*available),
                  " this machine has available; use a smaller model or batch size");
  }
  const std::size_t rounded = (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  void* ptr = std::aligned_alloc(kBufferAlignment, rounded);
  CUTRAIN_CHECK(ptr != nullptr, "out of memory: allocating ", bytes,
                " bytes on cpu failed; use a smaller model or batch size");
  return ptr;
}

}  // namespace

Buffer::Buffer(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  require_usable(device);
  if (bytes == 0) return;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  data_ = device.is_cpu() ? cpu_alloc(bytes) : detail::cuda::device_malloc(bytes, device.ordinal());
}

Buffer::~Buffer() {
  release();
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      device_(other.device_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = other.device_;
  }
  return *this;
}

void Buffer::release() noexcept {
  if (data_ == nullptr) return;
  if (device_.is_cpu()) {
    std::free(data_);
  } else {
    detail::cuda::device_free(data_, device_.ordinal());
  }
  data_ = nullptr;
  bytes_ = 0;
}

void Buffer::zero(NativeStream stream) {
  if (bytes_ == 0) return;
  if (device_.is_cpu()) {
    std::memset(data_, 0, bytes_);
  } else {
    detail::cuda::memset_zero(data_, bytes_, device_.ordinal(), stream);
  }
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  pinned_ = cuda_status().usable;
  data_ = pinned_ ? detail::cuda::host_malloc_pinned(bytes) : cpu_alloc(bytes);
}

PinnedBuffer::~PinnedBuffer() {
  release();
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      pinned_(other.pinned_) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    pinned_ = other.pinned_;
  }
  return *this;
}

void PinnedBuffer::release() noexcept {
  if (data_ == nullptr) return;
  if (pinned_) {
    detail::cuda::host_free_pinned(data_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
}

std::uint64_t detail::buffer_allocations() {
  return g_allocations.load(std::memory_order_relaxed);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes,
                NativeStream stream) {
  if (bytes == 0) return;
  CUTRAIN_CHECK(dst != nullptr && src != nullptr, "copy_bytes: null pointer for ", bytes, " bytes");
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  require_usable(dst_device);
  require_usable(src_device);
  // On the GPU side's device (Note [no context on device 0]): a copy issued while the thread's
  // device reads 0 would otherwise open a context on GPU 0.
  const detail::cuda::DeviceGuard guard(dst_device.is_cuda() ? dst_device.ordinal()
                                                             : src_device.ordinal());
  detail::cuda::memcpy(dst, src, bytes, stream, /*sync=*/stream == nullptr);
}

}  // namespace cutrain
