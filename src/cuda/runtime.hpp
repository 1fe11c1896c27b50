#pragma once
// The CUDA runtime as the host code uses it. Everything outside src/cuda/ and kernels/ goes
// through these functions, so a CPU-only build (CUTRAIN_CUDA=OFF) swaps in runtime_none.cpp,
// whose functions throw "built without CUDA", in this one place.

#include <cstddef>
#include <functional>

#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::detail::cuda {

CudaStatus discover();  // never throws
CudaDeviceProperties properties(int ordinal);

void* device_malloc(std::size_t bytes, int ordinal);  // throws cutrain::Error on failure
void device_free(void* ptr, int ordinal) noexcept;
void* host_malloc_pinned(std::size_t bytes);
void host_free_pinned(void* ptr) noexcept;

// cudaMemcpyDefault: any pair of host/device pointers (unified addressing).
void memcpy(void* dst, const void* src, std::size_t bytes, NativeStream stream, bool sync);
void memset_zero(void* dst, std::size_t bytes, int ordinal, NativeStream stream);

NativeStream stream_create(int ordinal);
void stream_destroy(NativeStream stream, int ordinal) noexcept;
void stream_synchronize(NativeStream stream, int ordinal);

NativeEvent event_create(int ordinal, bool timing);
void event_destroy(NativeEvent event, int ordinal) noexcept;
void event_record(NativeEvent event, NativeStream stream, int ordinal);
void stream_wait_event(NativeStream stream, NativeEvent event, int ordinal);
void event_synchronize(NativeEvent event);
bool event_query(NativeEvent event);
float event_elapsed_ms(NativeEvent start, NativeEvent stop);

// Makes `ordinal` the calling thread's device for good: for threads cutrain starts (the loader's
// worker), which have no previous device to restore.
void select_device(int ordinal);

// Makes `ordinal` current for the guard's lifetime, restoring the previous device after - unless
// that device has no context yet (Note [no context on device 0]).
class DeviceGuard {
 public:
  explicit DeviceGuard(int ordinal);
  // Restores the previous device on CUDA builds (trivial only in CPU-only builds).
  ~DeviceGuard();  // NOLINT(performance-trivially-destructible)
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Note [the step as one CUDA graph] (src/train/step_graph.hpp): the work `body` issues on
// `stream`, captured in thread-local mode (another thread's unrelated CUDA calls - the loader's
// copies - neither join nor break it) and instantiated once; launch() replays it. Owns the graph
// and its executable. Capturing runs nothing: the first launch runs what was captured. If body
// throws, or issues something that cannot be captured (a synchronization, a synchronous copy),
// the capture is ended, discarded, and the stream left usable; the error names the failure.
class CapturedGraph {
 public:
  CapturedGraph(NativeStream stream, int ordinal, const std::function<void()>& body);
  // Destroys the graph and its executable on CUDA builds (trivial only in CPU-only builds).
  ~CapturedGraph();  // NOLINT(performance-trivially-destructible)
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  void launch(NativeStream stream) const;
  std::size_t nodes() const { return nodes_; }  ///< kernels, copies and memsets captured

 private:
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
  int ordinal_ = 0;
  std::size_t nodes_ = 0;
};

}  // namespace cutrain::detail::cuda
