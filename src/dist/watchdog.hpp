#pragma once
// Note [collective timeout]
// A rank that dies is noticed by mpirun, which then kills the other ranks. A rank that hangs —
// a deadlock, a stuck GPU, a node mpirun has lost track of — would leave the others blocked
// forever inside MPI_Allreduce, or behind an ncclAllReduce in the stream. The watchdog turns a
// hang into an error: a thread that, when a collective has not completed within the timeout
// (CUTRAIN_DIST_TIMEOUT_S, default 600 s, PyTorch's NCCL default), prints which collective on
// which rank and ends the process with exit code 3. It must be std::_Exit: the main thread is
// blocked inside MPI or a stream wait and cannot unwind. mpirun then tears down the job. This is
// what PyTorch's ProcessGroupNCCL watchdog does.
//
// Blocking (MPI) collectives are watched for their duration; a device (NCCL) collective is
// watched through an event recorded after it: collectives on one stream complete in order, so
// the latest event standing for too long — the host stops recording new ones once it blocks —
// means a collective is stuck.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "cutrain/stream.hpp"

namespace cutrain::dist::detail {

class Watchdog {
 public:
  Watchdog(int rank, double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  class Scope {  // a blocking collective in progress
   public:
    Scope(Watchdog* w, const char* what);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Watchdog* w_;
  };
  // Call after enqueueing a device collective on `stream` (the event is recorded here).
  void enqueued(const char* what, Device device, NativeStream stream);
  double timeout_s() const { return timeout_s_; }

  // CUTRAIN_DIST_TIMEOUT_S, validated; the default when unset.
  static double timeout_from_env();

 private:
  using Clock = std::chrono::steady_clock;
  void run();
  [[noreturn]] void fire(const std::string& what, double waited_s) const;

  int rank_;
  double timeout_s_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::string blocking_what_;  // empty: none in progress
  Clock::time_point blocking_since_;
  Event event_;
  std::string device_what_;  // empty: nothing enqueued since the last completion
  Clock::time_point device_since_;
  std::thread thread_;
};

}  // namespace cutrain::dist::detail
