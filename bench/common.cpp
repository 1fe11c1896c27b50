#include "common.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

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

}  // namespace cutrain::bench
