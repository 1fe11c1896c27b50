#include "cutrain/dist/communicator.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "cutrain/ops.hpp"
#include "kernels/ops/axpy.cuh"
#include "src/cuda/runtime.hpp"
#include "src/dist/watchdog.hpp"
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

struct Communicator::Async {
#if CUTRAIN_WITH_MPI
  std::vector<MPI_Request> requests;  // CPU ranges in flight
#endif
  Stream comm;                         // CUDA: where NCCL runs the buckets
  Event ready, done;                   // compute -> comm before a bucket; comm -> compute at finish
  std::vector<ArenaRange> cpu_ranges;  // MPI ranges started since the last finish (sums: / size)
  bool device_pending = false;
  bool host_fallback = false;  // CUDA without NCCL: one allreduce_mean at finish
};

bool Communicator::launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

bool Communicator::compiled() {
  return CUTRAIN_WITH_MPI != 0;
}

bool Communicator::nccl_compiled() {
  return CUTRAIN_WITH_NCCL != 0;
}

std::unique_ptr<Communicator> Communicator::single_process_group() {
  return std::unique_ptr<Communicator>(new Communicator(true));
}

Communicator::Communicator(bool single_process)
    : single_process_(single_process), timeout_s_(detail::Watchdog::timeout_from_env()) {
  if (single_process) return;
#if CUTRAIN_WITH_MPI
  if (!launched_by_mpi()) return;  // a plain process: a group of one, MPI left alone
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // The loader and watchdog threads never call MPI: FUNNELED is enough.
    CUTRAIN_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  }
  // Errors come back as codes (thrown as cutrain::Error) instead of MPI aborting the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  CUTRAIN_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  CUTRAIN_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  MPI_Comm local;
  CUTRAIN_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
  CUTRAIN_MPI_CHECK(MPI_Comm_rank(local, &local_rank_));
  MPI_Comm_free(&local);
  if (size_ > 1) watchdog_ = std::make_unique<detail::Watchdog>(rank_, timeout_s_);
#endif
}

Communicator::~Communicator() {
  async_.reset();
  watchdog_.reset();
  nccl_.reset();
  if (single_process_) return;
#if CUTRAIN_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
#endif
}

Communicator& Communicator::world() {
  static Communicator c(false);  // finalizes MPI at exit
  return c;
}

void Communicator::nccl_init(Device device) {
#if CUTRAIN_WITH_NCCL
  if (nccl_ && nccl_->device == device.ordinal()) return;
  nccl_ = std::make_unique<Nccl>();
  ncclUniqueId id;
  if (rank_ == 0) CUTRAIN_NCCL_CHECK(ncclGetUniqueId(&id));
#if CUTRAIN_WITH_MPI
  if (size_ > 1) {
    const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Bcast of the NCCL unique id");
    CUTRAIN_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD));
  }
#endif
  cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
  const detail::Watchdog::Scope watched(watchdog_.get(), "ncclCommInitRank");
  CUTRAIN_NCCL_CHECK(ncclCommInitRank(&nccl_->comm, size_, id, rank_));
  nccl_->device = device.ordinal();
#else
  (void)device;
#endif
}

void Communicator::allreduce_mean(Arena& a, NativeStream stream) {
  if (!runs_collectives() || a.total() == 0) return;
  // MPI counts are int.
  [[maybe_unused]] auto mpi_count = [&] {
    CUTRAIN_CHECK(a.total() <= static_cast<std::size_t>(INT32_MAX), "allreduce_mean: ", a.total(),
                  " elements exceed MPI's int count");
    return static_cast<int>(a.total());
  };
  if (a.device().is_cpu()) {
#if CUTRAIN_WITH_MPI
    if (size_ > 1) {
      const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Allreduce of the gradients");
      CUTRAIN_MPI_CHECK(
          MPI_Allreduce(MPI_IN_PLACE, a.data(), mpi_count(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
      ops::scale(1.0F / static_cast<float>(size_), a);
    }
#endif
    return;  // a single-process group: the mean of one
  }
#if CUTRAIN_WITH_NCCL
  nccl_init(a.device());
  cutrain::detail::cuda::DeviceGuard guard(a.device().ordinal());
  CUTRAIN_NCCL_CHECK(
      ncclAllReduce(a.data(), a.data(), a.total(), ncclFloat, ncclAvg, nccl_->comm, stream));
  if (watchdog_) watchdog_->enqueued("ncclAllReduce of the gradients", a.device(), stream);
#elif CUTRAIN_WITH_MPI
  if (size_ > 1) {  // no NCCL: through host memory (correct, not fast)
    std::vector<float> host = a.to_host();
    const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Allreduce of the gradients");
    CUTRAIN_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, host.data(), mpi_count(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    for (float& v : host) v /= static_cast<float>(size_);
    a.from_host(host);
  }
  (void)stream;
#else
  (void)stream;
#endif
}

void Communicator::start_mean(Arena& a, const std::vector<ArenaRange>& ranges,
                              NativeStream stream) {
  if (!runs_collectives() || ranges.empty()) return;
  for (const ArenaRange& r : ranges)
    CUTRAIN_CHECK(r.begin < r.end && r.end <= a.total(), "start_mean: range [", r.begin, ", ",
                  r.end, ") is not inside the arena's ", a.total(), " elements");
  if (!async_) async_ = std::make_unique<Async>();
  Async& as = *async_;
  if (a.device().is_cpu()) {
#if CUTRAIN_WITH_MPI
    if (size_ == 1) return;
    for (const ArenaRange& r : ranges) {
      CUTRAIN_CHECK(r.end - r.begin <= static_cast<std::size_t>(INT32_MAX),
                    "start_mean: ", r.end - r.begin, " elements exceed MPI's int count");
      MPI_Request req;
      CUTRAIN_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, a.data() + r.begin,
                                       static_cast<int>(r.end - r.begin), MPI_FLOAT, MPI_SUM,
                                       MPI_COMM_WORLD, &req));
      as.requests.push_back(req);
      as.cpu_ranges.push_back(r);
    }
    // Nudge MPI's progress engine: without an asynchronous progress thread, a nonblocking
    // collective advances only inside MPI calls.
    int flag = 0;
    CUTRAIN_MPI_CHECK(MPI_Testall(static_cast<int>(as.requests.size()), as.requests.data(), &flag,
                                  MPI_STATUSES_IGNORE));
    if (flag) as.requests.clear();
#endif
    return;
  }
#if CUTRAIN_WITH_NCCL
  nccl_init(a.device());
  cutrain::detail::cuda::DeviceGuard guard(a.device().ordinal());
  if (as.comm.native() == nullptr || as.comm.device() != a.device()) {
    as.comm = Stream(a.device());
    as.ready = Event(a.device());
    as.done = Event(a.device());
  }
  as.ready.record(stream);
  as.ready.wait_on(as.comm.native());
  CUTRAIN_NCCL_CHECK(ncclGroupStart());
  for (const ArenaRange& r : ranges)
    CUTRAIN_NCCL_CHECK(ncclAllReduce(a.data() + r.begin, a.data() + r.begin, r.end - r.begin,
                                     ncclFloat, ncclAvg, nccl_->comm, as.comm.native()));
  CUTRAIN_NCCL_CHECK(ncclGroupEnd());
  as.device_pending = true;
  if (watchdog_)
    watchdog_->enqueued("ncclAllReduce of a gradient bucket", a.device(), as.comm.native());
#else
  as.host_fallback = true;
  (void)stream;
#endif
}

void Communicator::finish_mean(Arena& a, NativeStream stream) {
  if (!runs_collectives() || !async_) return;
  Async& as = *async_;
  if (a.device().is_cpu()) {
#if CUTRAIN_WITH_MPI
    if (as.cpu_ranges.empty()) return;
    if (!as.requests.empty()) {
      const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Iallreduce of a gradient bucket");
      CUTRAIN_MPI_CHECK(MPI_Waitall(static_cast<int>(as.requests.size()), as.requests.data(),
                                    MPI_STATUSES_IGNORE));
      as.requests.clear();
    }
    const float inv = 1.0F / static_cast<float>(size_);  // the rule allreduce_mean applies
    float* x = a.data();
    for (const ArenaRange& r : as.cpu_ranges)
      for (std::size_t i = r.begin; i < r.end; ++i) x[i] = rules::scale(inv, x[i]);
    as.cpu_ranges.clear();
#endif
    return;
  }
  if (as.device_pending) {
    as.done.record(as.comm.native());
    as.done.wait_on(stream);
    as.device_pending = false;
  }
  if (as.host_fallback) {
    as.host_fallback = false;
    allreduce_mean(a, stream);
  }
}

double Communicator::allreduce_sum(double value) {
#if CUTRAIN_WITH_MPI
  if (size_ > 1) {
    const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Allreduce of the metrics");
    CUTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  }
#endif
  return value;
}

void Communicator::allreduce_sum(double* values, std::size_t n, Device device,
                                 NativeStream stream) {
  if (!runs_collectives() || n == 0) return;
  [[maybe_unused]] auto mpi_count = [&] {
    CUTRAIN_CHECK(n <= static_cast<std::size_t>(INT32_MAX), "allreduce_sum: ", n,
                  " values exceed MPI's int count");
    return static_cast<int>(n);
  };
  if (device.is_cpu()) {
#if CUTRAIN_WITH_MPI
    if (size_ > 1) {
      const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Allreduce of batch statistics");
      CUTRAIN_MPI_CHECK(
          MPI_Allreduce(MPI_IN_PLACE, values, mpi_count(), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    }
#endif
    return;  // a single-process group: the sum of one
  }
#if CUTRAIN_WITH_NCCL
  nccl_init(device);
  cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
  CUTRAIN_NCCL_CHECK(ncclAllReduce(values, values, n, ncclDouble, ncclSum, nccl_->comm, stream));
  if (watchdog_) watchdog_->enqueued("ncclAllReduce of batch statistics", device, stream);
#elif CUTRAIN_WITH_MPI
  if (size_ > 1) {  // no NCCL: through host memory (correct, not fast)
    std::vector<double> host(n);
    copy_bytes(host.data(), Device::cpu(), values, device, n * sizeof(double), stream);
    cutrain::detail::cuda::stream_synchronize(stream, device.ordinal());
    {
      const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Allreduce of batch statistics");
      CUTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, host.data(), mpi_count(), MPI_DOUBLE, MPI_SUM,
                                      MPI_COMM_WORLD));
    }
    copy_bytes(values, device, host.data(), Device::cpu(), n * sizeof(double), stream);
    cutrain::detail::cuda::stream_synchronize(stream, device.ordinal());
  }
#else
  (void)values;  // no library to sum with: one process, the sum of one
  (void)stream;
#endif
}

std::vector<float> Communicator::allgather(std::span<const float> mine) {
  std::vector<float> all(mine.size() * static_cast<std::size_t>(size_));
#if CUTRAIN_WITH_MPI
  if (size_ > 1) {
    CUTRAIN_CHECK(mine.size() <= static_cast<std::size_t>(INT32_MAX), "allgather: ", mine.size(),
                  " values exceed MPI's int count");
    const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Allgather of the step results");
    const int n = static_cast<int>(mine.size());
    CUTRAIN_MPI_CHECK(
        MPI_Allgather(mine.data(), n, MPI_FLOAT, all.data(), n, MPI_FLOAT, MPI_COMM_WORLD));
    return all;
  }
#endif
  std::copy(mine.begin(), mine.end(), all.begin());
  return all;
}

void Communicator::broadcast(Arena& a, int root) {
  if (size_ == 1 || a.total() == 0) return;
#if CUTRAIN_WITH_MPI
  std::vector<float> host = a.to_host();
  CUTRAIN_CHECK(host.size() <= static_cast<std::size_t>(INT32_MAX), "broadcast: ", host.size(),
                " elements exceed MPI's int count");
  {
    const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Bcast of the weights");
    CUTRAIN_MPI_CHECK(
        MPI_Bcast(host.data(), static_cast<int>(host.size()), MPI_FLOAT, root, MPI_COMM_WORLD));
  }
  a.from_host(host);
#else
  (void)root;
#endif
}

void Communicator::barrier() {
#if CUTRAIN_WITH_MPI
  if (size_ > 1) {
    const detail::Watchdog::Scope watched(watchdog_.get(), "MPI_Barrier");
    CUTRAIN_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  }
#endif
}

}  // namespace cutrain::dist
