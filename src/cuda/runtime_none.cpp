// The CUDA runtime facade of a CPU-only build (CUTRAIN_CUDA=OFF): discovery explains why no GPU
// is usable, and everything else throws. Callers check require_usable() first, so reaching one
// of these throws means a code path forgot to; the message says so instead of crashing.
#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain::detail::cuda {
namespace {

[[noreturn]] void no_cuda(const char* what) {
  CUTRAIN_FAIL(what,
               ": cutrain was built without CUDA (CUTRAIN_CUDA=OFF); "
               "rebuild with the CUDA toolkit installed to use a GPU");
}

}  // namespace

CudaStatus discover() {
  CudaStatus s;
  s.reason = "cutrain was built without CUDA (CUTRAIN_CUDA=OFF)";
  return s;
}

CudaDeviceProperties properties(int) {
  no_cuda("cuda_properties");
}
void* device_malloc(std::size_t, int) {
  no_cuda("device allocation");
}
void device_free(void*, int) noexcept {}
void* host_malloc_pinned(std::size_t) {
  no_cuda("pinned allocation");
}
void host_free_pinned(void*) noexcept {}
void memcpy(void*, const void*, std::size_t, NativeStream, bool) {
  no_cuda("device copy");
}
void memset_zero(void*, std::size_t, int, NativeStream) {
  no_cuda("device memset");
}
NativeStream stream_create(int) {
  no_cuda("stream creation");
}
void stream_destroy(NativeStream, int) noexcept {}
void stream_synchronize(NativeStream, int) {
  no_cuda("stream synchronize");
}
NativeEvent event_create(int, bool) {
  no_cuda("event creation");
}
void event_destroy(NativeEvent, int) noexcept {}
void event_record(NativeEvent, NativeStream, int) {
  no_cuda("event record");
}
void stream_wait_event(NativeStream, NativeEvent, int) {
  no_cuda("stream wait");
}
void event_synchronize(NativeEvent) {
  no_cuda("event synchronize");
}
bool event_query(NativeEvent) {
  no_cuda("event query");
}
float event_elapsed_ms(NativeEvent, NativeEvent) {
  no_cuda("event timing");
}
void select_device(int) {
  no_cuda("device selection");
}
DeviceGuard::DeviceGuard(int) {
  no_cuda("device selection");
}
DeviceGuard::~DeviceGuard() = default;
CapturedGraph::CapturedGraph(NativeStream, int, const std::function<void()>&) {
  no_cuda("CUDA graph capture");
}
CapturedGraph::~CapturedGraph() = default;
void CapturedGraph::launch(NativeStream) const {
  no_cuda("CUDA graph launch");
}

}  // namespace cutrain::detail::cuda
