#pragma once
// Data-parallel training across processes: one process per device, launched with MPI
// (`mpirun -np N build/bin/cutrain-train ...`).
//
// MPI bootstraps the processes and carries CPU gradients (MPI_Allreduce); on CUDA, rank 0 makes
// an NCCL unique id, MPI broadcasts it, and gradients go through one ncclAllReduce (ncclAvg) of
// the whole gradient arena, on the training stream. Because gradients live in one flat arena,
// a step needs exactly one collective. Every rank then runs the identical fused optimizer step,
// so the ranks' weights stay bit-identical.
//
// Without MPI at build time (CUTRAIN_DISTRIBUTED=OFF), or a process not started by mpirun,
// world() is a group of one and every operation is the identity.

#include <cstdint>
#include <memory>

#include "cutrain/arena.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::dist {

class Communicator {
 public:
  // The process group (MPI_COMM_WORLD), initializing MPI on first use.
  static Communicator& world();
  // True when this process was started by an MPI launcher (OpenMPI, MPICH, Slurm's PMI).
  static bool launched_by_mpi();
  static bool compiled();  // built with MPI

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // among the ranks on this machine (its GPU)

  // a <- mean over ranks of a, in place (all ranks must call it; same layout everywhere).
  void allreduce_mean(Arena& a, NativeStream stream = nullptr);
  double allreduce_sum(double value);
  // a <- rank root's a (initial weights, so every rank starts identical).
  void broadcast(Arena& a, int root = 0);
  void barrier();

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

 private:
  Communicator();
  struct Nccl;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::unique_ptr<Nccl> nccl_;
};

}  // namespace cutrain::dist
