#include "cutrain/stream.hpp"

#include <utility>

#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain {

Stream::Stream(Device device) : device_(device) {
  require_usable(device);
  if (device.is_cuda()) stream_ = detail::cuda::stream_create(device.ordinal());
}

Stream::~Stream() {
  release();
}

Stream::Stream(Stream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)), device_(other.device_) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    release();
    stream_ = std::exchange(other.stream_, nullptr);
    device_ = other.device_;
  }
  return *this;
}

void Stream::release() noexcept {
  if (stream_ != nullptr) detail::cuda::stream_destroy(stream_, device_.ordinal());
  stream_ = nullptr;
}

void Stream::synchronize() const {
  if (device_.is_cuda()) detail::cuda::stream_synchronize(stream_, device_.ordinal());
}

Event::Event(Device device, bool timing) : device_(device) {
  require_usable(device);
  if (device.is_cuda()) event_ = detail::cuda::event_create(device.ordinal(), timing);
}

Event::~Event() {
  release();
}

Event::Event(Event&& other) noexcept
    : event_(std::exchange(other.event_, nullptr)), device_(other.device_) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    release();
    event_ = std::exchange(other.event_, nullptr);
    device_ = other.device_;
  }
  return *this;
}

void Event::release() noexcept {
  if (event_ != nullptr) detail::cuda::event_destroy(event_, device_.ordinal());
  event_ = nullptr;
}

// On the CPU work is synchronous, so every event is complete as soon as it is recorded.
void Event::record(NativeStream stream) {
  if (event_ != nullptr) detail::cuda::event_record(event_, stream, device_.ordinal());
}

void Event::wait_on(NativeStream stream) const {
  if (event_ != nullptr) detail::cuda::stream_wait_event(stream, event_, device_.ordinal());
}

void Event::synchronize() const {
  if (event_ != nullptr) detail::cuda::event_synchronize(event_);
}

bool Event::ready() const {
  return event_ == nullptr || detail::cuda::event_query(event_);
}

float Event::elapsed_ms(const Event& start, const Event& stop) {
  CUTRAIN_CHECK(start.event_ != nullptr && stop.event_ != nullptr,
                "Event::elapsed_ms needs two CUDA timing events (CPU events carry no time)");
  return detail::cuda::event_elapsed_ms(start.event_, stop.event_);
}

}  // namespace cutrain
