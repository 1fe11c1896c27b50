#include "common.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>

#include "cutrain/error.hpp"
#if CUTRAIN_BENCH_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cutrain::bench {

double time_per_run(Device device, NativeStream stream, const std::function<void()>& body,
                    double min_seconds, int warmup, int min_runs) {
  for (int i = 0; i < warmup; ++i) body();
  if (device.is_cuda()) {
    Event start(device, true), stop(device, true);
    int runs = min_runs;
    for (;;) {
      start.record(stream);
      for (int i = 0; i < runs; ++i) body();
      stop.record(stream);
      stop.synchronize();
      const double s = Event::elapsed_ms(start, stop) * 1e-3;
      if (s >= min_seconds || runs >= (1 << 20)) return s / runs;
      runs =
          static_cast<int>(std::min<double>(runs * std::max(2.0, 1.2 * min_seconds / s), 1 << 20));
    }
  }
  int runs = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double s = 0;
  do {
    body();
    ++runs;
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (s < min_seconds || runs < min_runs);
  return s / runs;
}

double copy_seconds(Device device, std::size_t bytes, NativeStream stream) {
  Buffer src(bytes, device), dst(bytes, device);
  src.zero(stream);
  dst.zero(stream);
  if (device.is_cuda()) {
    return time_per_run(device, stream,
                        [&] { copy_bytes(dst.data(), device, src.data(), device, bytes, stream); });
  }
  auto* d = dst.as<char>();
  const auto* s = src.as<char>();
  return time_per_run(device, stream, [&] {
#pragma omp parallel
    {
      const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
      const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t chunk = (bytes + nt - 1) / nt;
      const std::size_t begin = std::min(bytes, t * chunk);
      const std::size_t end = std::min(bytes, begin + chunk);
      std::memcpy(d + begin, s + begin, end - begin);
    }
  });
}

double graph_seconds_per_step(Device device, NativeStream stream, const std::function<void()>& step,
                              int steps, double min_seconds) {
#if CUTRAIN_BENCH_WITH_CUDA
  CUTRAIN_CHECK(device.is_cuda(), "graph_seconds_per_step: CUDA graphs need a CUDA device");
  auto check = [](cudaError_t e, const char* what) {
    CUTRAIN_CHECK(e == cudaSuccess, what, " failed: ", cudaGetErrorString(e));
  };
  auto* s = static_cast<cudaStream_t>(stream);
  step();  // warm the launch-shape caches outside the capture
  step();
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  cudaGraph_t raw = nullptr;
  check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  try {
    for (int i = 0; i < steps; ++i) step();
  } catch (...) {
    cudaStreamEndCapture(s, &raw);  // leave the stream usable
    if (raw != nullptr) cudaGraphDestroy(raw);
    throw;
  }
  check(cudaStreamEndCapture(s, &raw), "cudaStreamEndCapture");
  const std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, decltype(&cudaGraphDestroy)> graph(
      raw, &cudaGraphDestroy);
  cudaGraphExec_t raw_exec = nullptr;
  check(cudaGraphInstantiate(&raw_exec, graph.get(), 0), "cudaGraphInstantiate");
  const std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, decltype(&cudaGraphExecDestroy)>
      exec(raw_exec, &cudaGraphExecDestroy);
  return time_per_run(
             device, stream, [&] { check(cudaGraphLaunch(exec.get(), s), "cudaGraphLaunch"); },
             min_seconds) /
         steps;
#else
  (void)device, (void)stream, (void)step, (void)steps, (void)min_seconds;
  CUTRAIN_FAIL("graph_seconds_per_step: this build has no CUDA");
#endif
}

}  // namespace cutrain::bench
