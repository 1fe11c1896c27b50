#pragma once
// Data-parallel training across processes: one process per device, launched with MPI
// (`mpirun -np N build/bin/cutrain-train ...`).
//
// MPI bootstraps the processes and carries CPU gradients (MPI_Allreduce); on CUDA, rank 0 makes
// an NCCL unique id, MPI broadcasts it, and gradients go through one ncclAllReduce (ncclAvg) of
// the whole gradient arena, on the training stream. Because gradients live in one flat arena,
// a step needs exactly one collective — or, bucketed (start_mean / finish_mean, Note [gradient
// buckets]), one per bucket, overlapping backward on a communication stream. Every rank then runs
// the identical fused optimizer step, so the ranks' weights stay bit-identical.
//
// Without MPI at build time (CUTRAIN_DISTRIBUTED=OFF), or a process not started by mpirun,
// world() is a group of one and every operation is the identity.
//
// A rank that dies makes mpirun end the job; a rank that hangs makes the others exit with a
// clear message after CUTRAIN_DIST_TIMEOUT_S seconds (default 600) instead of waiting forever
// (Note [collective timeout], src/dist/watchdog.hpp).

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/dist/buckets.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::dist {

namespace detail {
class Watchdog;
}

/// The ranks of a data-parallel run: all-reduce and broadcast over NCCL on GPUs, MPI on the CPU,
/// with a watchdog on every collective.
class Communicator {
 public:
  /// The process group (MPI_COMM_WORLD), initializing MPI on first use.
  static Communicator& world();
  /// True when this process was started by an MPI launcher (OpenMPI, MPICH, Slurm's PMI).
  static bool launched_by_mpi();
  static bool compiled();       ///< built with MPI
  static bool nccl_compiled();  ///< built with NCCL (device gradients all-reduced on the device)
  /// A group of one process that still runs its collectives: ncclAllReduce (NCCL bootstrapped
  /// locally, no MPI) on device arenas, the identity on CPU arenas. It checks the NCCL path on a
  /// machine without a launcher (scripts/gpu_check.sh runs it); training with it equals training
  /// without a communicator.
  static std::unique_ptr<Communicator> single_process_group();

  int rank() const { return rank_; }               ///< this process's rank
  int size() const { return size_; }               ///< ranks in the job
  int local_rank() const { return local_rank_; }   ///< among the ranks on this machine (its GPU)
  double timeout_s() const { return timeout_s_; }  ///< Note [collective timeout]

  /// a <- mean over ranks of a, in place (all ranks must call it; same layout everywhere).
  void allreduce_mean(Arena& a, NativeStream stream = nullptr);
  /// The bucketed form (Note [gradient buckets], include/cutrain/dist/buckets.hpp): start
  /// averaging these ranges of `a` once the work issued so far on `stream` is done, while
  /// `stream` goes on (NCCL on a communication stream; MPI_Iallreduce on the CPU); then
  /// finish_mean orders `stream` after every range started since the last finish_mean. Between
  /// the two, the ranges in flight must not be touched. Every rank makes the same calls.
  void start_mean(Arena& a, const std::vector<ArenaRange>& ranges, NativeStream stream = nullptr);
  void finish_mean(Arena& a, NativeStream stream = nullptr);  ///< see start_mean
  double allreduce_sum(double value);  ///< the sum over the ranks (host values: metrics)
  /// values[0, n) <- their sum over the ranks, in place, on `device` (ncclAllReduce of doubles
  /// on `stream`; MPI on the CPU, or through host memory without NCCL): BatchNorm's statistics
  /// (Note [synchronized batch statistics], nn::Sequential::set_batch_statistics_sum).
  void allreduce_sum(double* values, std::size_t n, Device device, NativeStream stream = nullptr);
  /// Every rank's `mine` (the same length on each), concatenated in rank order: rank r's values
  /// at [r * mine.size(), (r + 1) * mine.size()). Exact (a copy, no arithmetic).
  std::vector<float> allgather(std::span<const float> mine);
  /// a <- rank root's a (initial weights, so every rank starts identical).
  void broadcast(Arena& a, int root = 0);
  void barrier();  ///< every rank waits for the others

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

 private:
  explicit Communicator(bool single_process);
  bool runs_collectives() const { return size_ > 1 || single_process_; }
  struct Nccl;
  struct Async;  ///< requests and streams of the bucketed form
  void nccl_init(Device device);
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool single_process_ = false;
  double timeout_s_;
  std::unique_ptr<Nccl> nccl_;
  std::unique_ptr<Async> async_;
  std::unique_ptr<detail::Watchdog> watchdog_;
};

}  // namespace cutrain::dist
