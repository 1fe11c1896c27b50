#pragma once
// What cutrain-train hooks into a fit(): a stop on SIGINT / SIGTERM and the time-to-accuracy
// callback.

#include <cstdint>
#include <vector>

#include "cutrain/data/dataset.hpp"
#include "cutrain/train/trainer.hpp"

namespace cutrain::tools {

// Note [stop on a signal]: the first SIGINT, SIGTERM or SIGHUP (an ssh connection that dropped: its
// run used to die with the steps since the last checkpoint) asks the trainer to stop after the
// step in flight, checkpoint there (mid-epoch, with --save) and return; exit 128 + the signal. The
// handler is one-shot (SA_RESETHAND), so a second Ctrl-C kills the process at once. A hangup
// ignored when the run started (nohup) stays ignored. The handler only stores to lock-free
// atomics and write()s, both async-signal-safe. Under mpirun every rank gets the signal, and the
// ranks stop together at the next --checkpoint-every step (or epoch end). An object installs the
// handler for its lifetime (one fit()) and restores the dispositions it found after.
class StopOnSignal {
 public:
  explicit StopOnSignal(train::Trainer& t);
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  /// The signal that asked the run to stop (0: none yet), for the exit status 128 + it.
  static int received();
};

// --target-accuracy: the test set evaluated after every epoch (outside the epoch's timed
// training), and the training seconds until the first epoch at or above the target: the
// time-to-accuracy figure, comparable with bench/torch/mlp_gpu.py --target-accuracy.
struct TimeToAccuracy final : train::Callback {
  TimeToAccuracy(train::Trainer& t, const data::Dataset& d, double target)
      : trainer(t), test(d), goal(target) {}
  void on_epoch_end(const train::EpochMetrics& m) override;
  train::Trainer& trainer;
  const data::Dataset& test;
  double goal, trained = 0, seconds = 0, accuracy = 0;
  std::int64_t epoch = 0;         // first epoch at or above the goal (0: not yet)
  std::vector<double> per_epoch;  // this run's epochs (after a resume: from the resumed one)
};

}  // namespace cutrain::tools
