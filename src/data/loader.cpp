#include "cutrain/data/loader.hpp"

// The loader: construction, epoch orders, and the streaming path (a worker thread fills pinned
// slots and uploads them on its own stream). The resident path is src/data/loader_resident.cpp.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "cutrain/error.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#include "src/data/loader_impl.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/data/data.hpp"
#endif

namespace cutrain::data {

using detail::gather_host;

namespace detail {

void gather_host(const Dataset& d, const std::vector<std::int64_t>& order, std::int64_t begin,
                 std::int64_t rows, float* x, unsigned char* y, int threads) {
  const auto f = static_cast<std::size_t>(d.features);
  const auto tw = static_cast<std::size_t>(d.target_width);
  // At most OMP_NUM_THREADS: the user's limit holds here too (and keeps the ThreadSanitizer
  // suite, which runs with 1, free of libgomp's uninstrumented team).
  const int team = std::min(threads, omp_get_max_threads());
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1)
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto src = static_cast<std::size_t>(order[static_cast<std::size_t>(begin + r)]);
    std::memcpy(x + static_cast<std::size_t>(r) * f, d.x.data() + src * f, f * sizeof(float));
    if (d.classification()) {
      reinterpret_cast<std::int32_t*>(y)[r] = d.labels[src];
    } else if (tw > 0) {
      std::memcpy(reinterpret_cast<float*>(y) + static_cast<std::size_t>(r) * tw,
                  d.targets.data() + src * tw, tw * sizeof(float));
    }
  }
}

}  // namespace detail

namespace {

// Note [parallel gather]: a shuffled batch is one memcpy per row, and one thread gathers ~6 GB/s:
// on the H100 a 1024-row Fashion-MNIST batch (3.2 MB) took ~480 us to gather against ~200 us of
// compute, so the pipelined loader ran at the synchronous loader's pace (bench_loader, 28% of
// the copy hidden; bench/RESULTS.md). While a GPU computes, the host's other cores are idle:
// batches over 1 MB are gathered by up to 4 threads. On the CPU backend the worker keeps one
// thread - the training loop's own OpenMP team is using the cores.
int gather_threads(Device device, std::int64_t floats) {
  constexpr std::int64_t kParallelFloats = std::int64_t{1} << 18;
  if (!device.is_cuda() || floats < kParallelFloats) return 1;
  const auto cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores - 1, 1, 4);  // one core for the thread launching the steps
}

}  // namespace

Loader::Loader(const Dataset& dataset, Device device, const LoaderOptions& options)
    : dataset_(dataset), device_(device), options_(options), impl_(std::make_unique<Impl>()) {
  require_usable(device);
  CUTRAIN_CHECK(options.batch_size > 0, "Loader: batch_size = ", options.batch_size,
                " must be positive");
  CUTRAIN_CHECK(options.prefetch >= 2 && options.prefetch <= 16,
                "Loader: prefetch = ", options.prefetch, " is invalid; valid: 2 to 16");
  CUTRAIN_CHECK(dataset.rows > 0, "Loader: the dataset is empty");
  CUTRAIN_CHECK(options.world >= 1 && options.rank >= 0 && options.rank < options.world,
                "Loader: rank ", options.rank, " of world ", options.world, " is invalid");
  dataset.validate("Loader dataset");
  const auto b = static_cast<std::size_t>(max_batch_rows());
  impl_->x_bytes = b * static_cast<std::size_t>(dataset.features) * sizeof(float);
  impl_->y_bytes = dataset.classification()
                       ? b * sizeof(std::int32_t)
                       : b * static_cast<std::size_t>(dataset.target_width) * sizeof(float);
  const std::size_t bytes = impl_->x_bytes + impl_->y_bytes;
  if (options.resident) {
    init_resident();
    return;
  }
  impl_->copy_stream = Stream(device);
  impl_->slots.resize(static_cast<std::size_t>(options.prefetch));
  // Pinned memory belongs to the current device's context: the loader's, not device 0's.
  std::optional<cutrain::detail::cuda::DeviceGuard> guard;
  if (device.is_cuda()) guard.emplace(device.ordinal());
  for (auto& s : impl_->slots) {
    s.host = PinnedBuffer(bytes);
    if (device.is_cuda()) {
      s.device = Buffer(bytes, device);
      s.copied = Event(device);
      s.consumed = Event(device);
    }
  }
}

Loader::~Loader() {
  if (options_.resident) {  // do not free buffers the compute stream may still read
    Impl::Resident& r = impl_->res;
    for (int i = 0; i < 2; ++i)
      if (r.consumed_recorded[i]) r.consumed[i].synchronize();
    if (r.order_read_recorded) r.order_read.synchronize();
    return;
  }
  impl_->stop = true;
  impl_->free_q.close();
  impl_->full_q.close();
  if (impl_->worker.joinable()) impl_->worker.join();
  // Do not free device buffers the compute stream may still read.
  for (auto& s : impl_->slots)
    if (s.consumed_recorded) s.consumed.synchronize();
}

std::int64_t Loader::rows_per_epoch() const {
  const std::int64_t n = dataset_.rows, w = options_.world, r = options_.rank;
  if (w == 1) return n;
  return options_.pad ? (n + w - 1) / w : (n - r + w - 1) / w;
}

std::int64_t Loader::max_batch_rows() const {
  return std::min(options_.batch_size, rows_per_epoch());
}

std::int64_t Loader::batches_per_epoch() const {
  const std::int64_t n = rows_per_epoch(), b = options_.batch_size;
  return groups_of(n, b, options_.drop_last);
}

std::vector<std::int64_t> Loader::epoch_order(std::uint64_t epoch) const {
  std::vector<std::int64_t> order;
  if (options_.shuffle) {
    order = permutation(dataset_.rows, options_.seed, epoch);
  } else {
    order.resize(static_cast<std::size_t>(dataset_.rows));
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  }
  if (options_.world > 1) {  // this rank's shard of the (padded) epoch order
    const auto w = static_cast<std::size_t>(options_.world);
    std::vector<std::int64_t> full = std::move(order);
    if (options_.pad)
      for (std::size_t i = 0; full.size() % w != 0; ++i) full.push_back(full[i]);
    order.clear();
    for (std::size_t i = static_cast<std::size_t>(options_.rank); i < full.size(); i += w)
      order.push_back(full[i]);
  }
  return order;
}

void Loader::start_epoch(std::uint64_t epoch, std::int64_t skip_batches) {
  CUTRAIN_CHECK(skip_batches >= 0 && skip_batches <= batches_per_epoch(),
                "Loader::start_epoch: cannot skip ", skip_batches, " of ", batches_per_epoch(),
                " batches");
  Impl& im = *impl_;
  if (options_.resident) {
    start_resident_epoch(epoch, skip_batches);
    return;
  }
  // An abandoned epoch's batch may still be in use on the stream it was handed out for: its
  // slot is recycled only after that work (as next() does for every batch it takes back).
  if (im.held >= 0 && device_.is_cuda()) {
    Impl::Slot& held = im.slots[static_cast<std::size_t>(im.held)];
    held.consumed.record(im.held_stream);
    held.consumed_recorded = true;
  }
  // Stop a running epoch: close both queues so the worker wakes and exits, then join.
  im.stop = true;
  im.free_q.close();
  im.full_q.close();
  if (im.worker.joinable()) im.worker.join();
  im.stop = false;
  im.error = nullptr;
  im.free_q.reset();
  im.full_q.reset();
  im.held = -1;
  for (int i = 0; i < static_cast<int>(im.slots.size()); ++i) im.free_q.push(i);
  im.order = epoch_order(epoch);
  const std::int64_t total = batches_per_epoch();
  im.worker = std::thread([this, skip_batches, total] {
    Impl& w = *impl_;
    const Dataset& d = dataset_;
    try {
      // Note [no context on device 0] (src/cuda/runtime.cpp): this thread's CUDA calls (event
      // waits, the upload) run on the loader's device, selected once for the thread's life.
      if (device_.is_cuda()) cutrain::detail::cuda::select_device(device_.ordinal());
      for (std::int64_t k = skip_batches; k < total && !w.stop; ++k) {
        const int id = w.free_q.pop();
        if (id < 0) return;
        Impl::Slot& s = w.slots[static_cast<std::size_t>(id)];
        // The host buffer's previous upload must be complete before it is overwritten.
        if (device_.is_cuda()) s.copied.synchronize();
        const std::int64_t begin = k * options_.batch_size;
        const std::int64_t rows =
            std::min(options_.batch_size, static_cast<std::int64_t>(w.order.size()) - begin);
        gather_host(d, w.order, begin, rows, s.host.as<float>(),
                    reinterpret_cast<unsigned char*>(s.host.data()) + w.x_bytes,
                    gather_threads(device_, rows * d.features));
        s.rows = rows;
        s.index = k;
        if (device_.is_cuda()) {
          // Upload after the compute stream is done with this slot's device buffer.
          if (s.consumed_recorded) s.consumed.wait_on(w.copy_stream.native());
          copy_bytes(s.device.data(), device_, s.host.data(), Device::cpu(), w.x_bytes + w.y_bytes,
                     w.copy_stream.native());
          s.copied.record(w.copy_stream.native());
        }
        w.full_q.push(id);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(w.error_mu);
      w.error = std::current_exception();
    }
    w.full_q.close();  // end of epoch (or error): next() returns after the queued batches
  });
}

std::optional<Batch> Loader::next(NativeStream compute_stream) {
  if (options_.resident) return next_resident(compute_stream);
  Impl& im = *impl_;
  CUTRAIN_CHECK(im.worker.joinable() || im.held >= 0, "Loader::next before start_epoch");
  if (im.held >=
      0) {  // the previous batch: give its slot back once the stream that used it is done
    Impl::Slot& prev = im.slots[static_cast<std::size_t>(im.held)];
    if (device_.is_cuda()) {
      prev.consumed.record(im.held_stream);  // not this call's stream: a caller may alternate
      prev.consumed_recorded = true;
    }
    im.free_q.push(im.held);
    im.held = -1;
  }
  const int id = im.full_q.pop();
  if (id < 0) {
    if (im.worker.joinable()) im.worker.join();
    std::lock_guard<std::mutex> lock(im.error_mu);
    if (im.error) std::rethrow_exception(std::exchange(im.error, nullptr));
    return std::nullopt;
  }
  Impl::Slot& s = im.slots[static_cast<std::size_t>(id)];
  im.held = id;
  im.held_stream = compute_stream;
  Batch b;
  b.rows = s.rows;
  b.index = s.index;
  unsigned char* base = device_.is_cuda() ? static_cast<unsigned char*>(s.device.data())
                                          : static_cast<unsigned char*>(s.host.data());
  if (device_.is_cuda()) s.copied.wait_on(compute_stream);
  b.x = nn::Matrix{reinterpret_cast<float*>(base), s.rows, dataset_.features, device_};
  if (dataset_.classification()) {
    b.labels = reinterpret_cast<const std::int32_t*>(base + im.x_bytes);
  } else {
    b.targets = nn::Matrix{reinterpret_cast<float*>(base + im.x_bytes), s.rows,
                           dataset_.target_width, device_};
  }
  return b;
}

}  // namespace cutrain::data
