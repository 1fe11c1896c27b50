#include "cutrain/dist/communicator.hpp"

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "cutrain/ops.hpp"
#include "src/cuda/runtime.hpp"
#if CUTRAIN_WITH_MPI
#include <mpi.h>
#endif
#if CUTRAIN_WITH_NCCL
#include <nccl.h>
#endif

namespace cutrain::dist {

#if CUTRAIN_WITH_MPI
namespace {
void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  CUTRAIN_FAIL(call, " failed: ", std::string(msg, static_cast<std::size_t>(len)));
}
#define CUTRAIN_MPI_CHECK(call) check_mpi((call), #call)
}  // namespace
#endif

#if CUTRAIN_WITH_NCCL
struct Communicator::Nccl {
  ncclComm_t comm = nullptr;
  int device = -1;
  ~Nccl() {
    if (comm != nullptr) ncclCommDestroy(comm);
  }
};
#define CUTRAIN_NCCL_CHECK(call)                                                  \
  do {                                                                            \
    const ncclResult_t r_ = (call);                                               \
    CUTRAIN_CHECK(r_ == ncclSuccess, #call, " failed: ", ncclGetErrorString(r_)); \
  } while (0)
#else
struct Communicator::Nccl {};
#endif

bool Communicator::launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

bool Communicator::compiled() {
  return CUTRAIN_WITH_MPI != 0;
}

Communicator::Communicator() {
#if CUTRAIN_WITH_MPI
  if (!launched_by_mpi()) return;  // a plain process: a group of one, MPI left alone
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // The loader thread never calls MPI: FUNNELED is enough.
    CUTRAIN_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  }
  CUTRAIN_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  CUTRAIN_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  MPI_Comm local;
  CUTRAIN_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
  CUTRAIN_MPI_CHECK(MPI_Comm_rank(local, &local_rank_));
  MPI_Comm_free(&local);
#endif
}

Communicator::~Communicator() {
  nccl_.reset();
#if CUTRAIN_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
#endif
}

Communicator& Communicator::world() {
  static Communicator c;  // finalizes MPI at exit
  return c;
}

void Communicator::allreduce_mean(Arena& a, NativeStream stream) {
  if (size_ == 1 || a.total() == 0) return;
  CUTRAIN_CHECK(a.total() <= static_cast<std::size_t>(INT32_MAX), "allreduce_mean: ", a.total(),
                " elements exceed MPI's int count");
#if CUTRAIN_WITH_MPI
  if (a.device().is_cpu()) {
    CUTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, a.data(), static_cast<int>(a.total()), MPI_FLOAT,
                                    MPI_SUM, MPI_COMM_WORLD));
    ops::scale(1.0F / static_cast<float>(size_), a);
    return;
  }
#if CUTRAIN_WITH_NCCL
  if (!nccl_ || nccl_->device != a.device().ordinal()) {
    nccl_ = std::make_unique<Nccl>();
    ncclUniqueId id;
    if (rank_ == 0) CUTRAIN_NCCL_CHECK(ncclGetUniqueId(&id));
    CUTRAIN_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD));
    detail::cuda::DeviceGuard guard(a.device().ordinal());
    CUTRAIN_NCCL_CHECK(ncclCommInitRank(&nccl_->comm, size_, id, rank_));
    nccl_->device = a.device().ordinal();
  }
  detail::cuda::DeviceGuard guard(a.device().ordinal());
  CUTRAIN_NCCL_CHECK(
      ncclAllReduce(a.data(), a.data(), a.total(), ncclFloat, ncclAvg, nccl_->comm, stream));
#else
  // No NCCL: through host memory (correct, not fast).
  std::vector<float> host = a.to_host();
  CUTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, host.data(), static_cast<int>(host.size()),
                                  MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
  for (float& v : host) v /= static_cast<float>(size_);
  a.from_host(host);
  (void)stream;
#endif
#else
  (void)stream;
#endif
}

double Communicator::allreduce_sum(double value) {
#if CUTRAIN_WITH_MPI
  if (size_ > 1)
    CUTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
#endif
  return value;
}

void Communicator::broadcast(Arena& a, int root) {
  if (size_ == 1 || a.total() == 0) return;
#if CUTRAIN_WITH_MPI
  std::vector<float> host = a.to_host();
  CUTRAIN_MPI_CHECK(
      MPI_Bcast(host.data(), static_cast<int>(host.size()), MPI_FLOAT, root, MPI_COMM_WORLD));
  a.from_host(host);
#else
  (void)root;
#endif
}

void Communicator::barrier() {
#if CUTRAIN_WITH_MPI
  if (size_ > 1) CUTRAIN_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
#endif
}

}  // namespace cutrain::dist
