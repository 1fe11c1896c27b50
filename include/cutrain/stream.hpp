#pragma once
// Streams and events (RAII). On the CPU both are inert: work runs in order as it is issued.
//
// NativeStream is exactly cudaStream_t (a pointer to the opaque CUstream_st), declared here so
// the public headers do not require the CUDA headers; pass stream.native() to your own kernels.

#include "cutrain/device.hpp"

struct CUstream_st;
struct CUevent_st;

namespace cutrain {

using NativeStream = CUstream_st*;
using NativeEvent = CUevent_st*;

/// A CUDA stream (RAII), or the CPU's synchronous stand-in.
class Stream {
 public:
  Stream() = default;              ///< the CPU "stream"
  explicit Stream(Device device);  ///< on CUDA: a new non-blocking stream
  ~Stream();
  Stream(Stream&& other) noexcept;             ///< takes the stream; `other` is left empty
  Stream& operator=(Stream&& other) noexcept;  ///< destroys this stream, then takes `other`'s
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  NativeStream native() const { return stream_; }  ///< the cudaStream_t (null on the CPU)
  Device device() const { return device_; }        ///< the stream's device
  void synchronize() const;                        ///< waits for the work issued on it

 private:
  void release() noexcept;
  NativeStream stream_ = nullptr;
  Device device_;
};

/// A CUDA event (RAII) for ordering streams and timing them.
class Event {
 public:
  Event() = default;
  /// timing=false creates the cheaper event used only for ordering streams.
  explicit Event(Device device, bool timing = false);
  ~Event();
  Event(Event&& other) noexcept;             ///< takes the event; `other` is left empty
  Event& operator=(Event&& other) noexcept;  ///< destroys this event, then takes `other`'s
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(NativeStream stream);  ///< marks the point `stream` has reached
  /// Makes `stream` wait for the work recorded before this event (no host wait).
  void wait_on(NativeStream stream) const;
  void synchronize() const;  ///< waits (on the host) for the recorded work
  bool ready() const;        ///< whether the recorded work is done (no wait)
  /// Milliseconds between two recorded timing events.
  static float elapsed_ms(const Event& start, const Event& stop);
  NativeEvent native() const { return event_; }  ///< the cudaEvent_t (null on the CPU)

 private:
  void release() noexcept;
  NativeEvent event_ = nullptr;
  Device device_;
};

}  // namespace cutrain
