// The CUDA runtime facade (CUTRAIN_WITH_CUDA builds). See runtime.hpp.
#include "src/cuda/runtime.hpp"

#include "src/cuda/check.hpp"

namespace cutrain::detail::cuda {
namespace {

std::string version_str(int v) {
  return cat(v / 1000, '.', (v % 1000) / 10);
}

}  // namespace

CudaStatus discover() {
  CudaStatus s;
  s.compiled = true;
  cudaRuntimeGetVersion(&s.runtime_version);
  // With no driver installed cudaDriverGetVersion succeeds and reports 0.
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess || s.driver_version == 0) {
    cudaGetLastError();
    s.reason =
        "no NVIDIA driver found (libcuda.so could not be loaded); install the NVIDIA "
        "driver, or use Device::cpu()";
    return s;
  }
  // CUDA's minor-version compatibility lets a 13.0 driver run a 13.x runtime; a major step not.
  if (s.driver_version / 1000 < s.runtime_version / 1000) {
    s.reason = cat("the NVIDIA driver supports CUDA ", version_str(s.driver_version),
                   " but cutrain was built with CUDA ", version_str(s.runtime_version),
                   "; upgrade the driver, or use Device::cpu()");
    return s;
  }
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (status == cudaErrorNoDevice) {
      s.reason = cat("no CUDA device found (driver ", version_str(s.driver_version),
                     " is installed; check CUDA_VISIBLE_DEVICES)");
    } else if (status == cudaErrorInsufficientDriver) {
      s.reason = cat("the NVIDIA driver (CUDA ", version_str(s.driver_version),
                     ") is older than the CUDA runtime cutrain was built with (",
                     version_str(s.runtime_version), "); upgrade the driver");
    } else {
      s.reason = cat("cudaGetDeviceCount failed: ", cudaGetErrorName(status), ": ",
                     cudaGetErrorString(status));
    }
    return s;
  }
  if (count == 0) {
    s.reason = "no CUDA device found";
    return s;
  }
  s.device_count = count;
  s.usable = true;
  return s;
}

CudaDeviceProperties properties(int ordinal) {
  cudaDeviceProp prop{};
  CUTRAIN_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
  CudaDeviceProperties p;
  p.name = prop.name;
  p.multiprocessors = prop.multiProcessorCount;
  p.compute_major = prop.major;
  p.compute_minor = prop.minor;
  p.global_memory_bytes = prop.totalGlobalMem;
  return p;
}

void* device_malloc(std::size_t bytes, int ordinal) {
  DeviceGuard guard(ordinal);
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky; clear it for the next call
    CUTRAIN_FAIL("out of memory: cudaMalloc of ", bytes, " bytes on cuda:", ordinal, " failed (",
                 cudaGetErrorString(status),
                 "); use a smaller model or batch size, or free other GPU memory");
  }
  return ptr;
}

void device_free(void* ptr, int ordinal) noexcept {
  if (ptr == nullptr) return;
  int previous = -1;
  cudaGetDevice(&previous);
  cudaSetDevice(ordinal);
  cudaFree(ptr);
  if (previous >= 0) cudaSetDevice(previous);
}

void* host_malloc_pinned(std::size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMallocHost(&ptr, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    CUTRAIN_FAIL("out of memory: cudaMallocHost of ", bytes, " pinned bytes failed (",
                 cudaGetErrorString(status), ")");
  }
  return ptr;
}

void host_free_pinned(void* ptr) noexcept {
  if (ptr != nullptr) cudaFreeHost(ptr);
}

void memcpy(void* dst, const void* src, std::size_t bytes, NativeStream stream, bool sync) {
  if (bytes == 0) return;
  CUTRAIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
  if (sync) CUTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void memset_zero(void* dst, std::size_t bytes, int ordinal, NativeStream stream) {
  if (bytes == 0) return;
  DeviceGuard guard(ordinal);
  CUTRAIN_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream));
  // The null stream does not order against cutrain's non-blocking streams: finish the fill
  // before anyone can use the memory from another stream.
  if (stream == nullptr) CUTRAIN_CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

NativeStream stream_create(int ordinal) {
  DeviceGuard guard(ordinal);
  cudaStream_t s = nullptr;
  CUTRAIN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(NativeStream stream, int ordinal) noexcept {
  if (stream == nullptr) return;
  int previous = -1;
  cudaGetDevice(&previous);
  cudaSetDevice(ordinal);
  cudaStreamDestroy(stream);
  if (previous >= 0) cudaSetDevice(previous);
}

void stream_synchronize(NativeStream stream, int ordinal) {
  DeviceGuard guard(ordinal);
  CUTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
}

NativeEvent event_create(int ordinal, bool timing) {
  DeviceGuard guard(ordinal);
  cudaEvent_t e = nullptr;
  CUTRAIN_CUDA_CHECK(
      cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}

void event_destroy(NativeEvent event, int /*ordinal*/) noexcept {
  if (event != nullptr) cudaEventDestroy(event);
}

void event_record(NativeEvent event, NativeStream stream, int ordinal) {
  DeviceGuard guard(ordinal);
  CUTRAIN_CUDA_CHECK(cudaEventRecord(event, stream));
}

void stream_wait_event(NativeStream stream, NativeEvent event, int ordinal) {
  DeviceGuard guard(ordinal);
  CUTRAIN_CUDA_CHECK(cudaStreamWaitEvent(stream, event, 0));
}

void event_synchronize(NativeEvent event) {
  CUTRAIN_CUDA_CHECK(cudaEventSynchronize(event));
}

bool event_query(NativeEvent event) {
  const cudaError_t status = cudaEventQuery(event);
  if (status == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  CUTRAIN_CUDA_CHECK(status);
  return true;
}

float event_elapsed_ms(NativeEvent start, NativeEvent stop) {
  float ms = 0.0F;
  CUTRAIN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  return ms;
}

void select_device(int ordinal) {
  CUTRAIN_CUDA_CHECK(cudaSetDevice(ordinal));
}

namespace {
// Note [no context on device 0]: a thread that never chose a device reports device 0, and since
// CUDA 12 cudaSetDevice creates the device's primary context. A guard that "restored" device 0
// after working on cuda:1 would open a context on GPU 0 in every process (hundreds of MiB each
// on an 8-GPU node; an error in exclusive-process mode). So the previous device is restored only
// when its primary context is already active - when the thread (or process) really used it.
// cuDevicePrimaryCtxGetState through the runtime's driver entry point: no link to libcuda.
bool primary_context_active(int ordinal) {
  using GetState = int (*)(int device, unsigned int* flags, int* active);
  static const GetState get_state = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &fn, 12000,
                                         cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      return GetState{nullptr};
    return reinterpret_cast<GetState>(fn);
  }();
  if (get_state == nullptr) return true;  // cannot tell: restore, as a plain guard would
  unsigned int flags = 0;
  int active = 0;
  return get_state(ordinal, &flags, &active) != 0 || active != 0;  // an error: restore too
}
}  // namespace

DeviceGuard::DeviceGuard(int ordinal) {
  CUTRAIN_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != ordinal) CUTRAIN_CUDA_CHECK(cudaSetDevice(ordinal));
}

DeviceGuard::~DeviceGuard() {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_ && previous_ >= 0 &&
      primary_context_active(previous_))
    cudaSetDevice(previous_);
}

CapturedGraph::CapturedGraph(NativeStream stream, int ordinal, const std::function<void()>& body)
    : ordinal_(ordinal) {
  DeviceGuard guard(ordinal);
  auto* s = static_cast<cudaStream_t>(stream);
  CUTRAIN_CHECK(s != nullptr,
                "CUDA graph capture: the legacy default stream cannot be captured; give a stream");
  CUTRAIN_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t graph = nullptr;
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(s, &graph);  // leaves the stream usable; the partial graph is dropped
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(s, &graph);
  if (ended != cudaSuccess) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();
    CUTRAIN_FAIL("CUDA graph capture failed: ", cudaGetErrorString(ended),
                 " (the step issued something a graph cannot hold: a synchronization, a "
                 "synchronous copy or an allocation)");
  }
  // Counted before instantiating: nothing below may throw with the graph or its executable held
  // (a constructor that throws runs no destructor).
  std::size_t count = 0;
  const cudaError_t counted = cudaGraphGetNodes(graph, nullptr, &count);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made =
      counted == cudaSuccess ? cudaGraphInstantiate(&exec, graph, 0) : counted;
  if (made != cudaSuccess) {
    cudaGraphDestroy(graph);
    cudaGetLastError();
    CUTRAIN_FAIL("cudaGraphInstantiate failed: ", cudaGetErrorString(made));
  }
  graph_ = graph;
  exec_ = exec;
  nodes_ = count;
}

CapturedGraph::~CapturedGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
  if (graph_ != nullptr) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
}

void CapturedGraph::launch(NativeStream stream) const {
  DeviceGuard guard(ordinal_);
  CUTRAIN_CUDA_CHECK(
      cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), static_cast<cudaStream_t>(stream)));
}

}  // namespace cutrain::detail::cuda
