#pragma once
// Shared timing helpers for bench/*: every figure is reported next to a memory-copy roofline
// measured in the same run on the same device.

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::bench {

// Runs `body` (which issues work on `stream`) until at least `min_seconds` of it have been
// timed, after `warmup` untimed runs; returns seconds per run. CUDA work is timed with events.
double time_per_run(Device device, NativeStream stream, const std::function<void()>& body,
                    double min_seconds = 0.2, int warmup = 3, int min_runs = 5);

// Seconds to copy `bytes` bytes within `device` memory (device-to-device on CUDA, an OpenMP
// parallel memcpy on the CPU). The roofline: a copy moves 2 * bytes (read + write).
double copy_seconds(Device device, std::size_t bytes, NativeStream stream);

// CUDA (CUTRAIN_BENCH_WITH_CUDA builds; throws otherwise): seconds per step with `steps` calls of
// `step` captured into one CUDA graph and the graph replayed - the device's time for a step
// without the host's launch overhead (what a CUDA-graph training loop gets). The optimizer's step
// counters are updated in place on the device (Note [device step counter]), so replays count
// steps as eager launches do; whatever the host still passes by value (the lr, dropout's stream
// position) is frozen at its captured value, which timing does not mind.
double graph_seconds_per_step(Device device, NativeStream stream, const std::function<void()>& step,
                              int steps, double min_seconds);

// Whether a shape named `name` ("conv3 32-64 14x14") is among `only` (first words, "conv3"):
// every shape when `only` is empty (the benches' --shape).
inline bool named(const std::string& name, const std::vector<std::string>& only) {
  if (only.empty()) return true;
  const std::string first = name.substr(0, name.find(' '));
  for (const std::string& o : only)
    if (o == first) return true;
  return false;
}

}  // namespace cutrain::bench
