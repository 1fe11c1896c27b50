// The resident path of the loader (Note [resident datasets]): the dataset on the device, each
// batch gathered there on the caller's stream.
#include <algorithm>

#include "cutrain/error.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#include "src/data/loader_impl.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/data/data.hpp"
#endif

namespace cutrain::data {

using detail::gather_host;

void Loader::init_resident() {
  Impl::Resident& r = impl_->res;
  const std::size_t bytes = impl_->x_bytes + impl_->y_bytes;
  for (auto& b : r.batch) b = Buffer(bytes, device_);
  if (device_.is_cpu()) return;  // the dataset is read where it is
  const Dataset& d = dataset_;
  const std::size_t x_bytes = d.x.size() * sizeof(float);
  const std::size_t y_bytes = d.classification() ? d.labels.size() * sizeof(std::int32_t)
                                                 : d.targets.size() * sizeof(float);
  try {
    r.x = Buffer(x_bytes, device_);
    if (y_bytes > 0) r.y = Buffer(y_bytes, device_);
    r.order = Buffer(static_cast<std::size_t>(d.rows) * sizeof(std::int64_t), device_);
  } catch (const Error& e) {
    CUTRAIN_FAIL("Loader: the resident dataset (", (x_bytes + y_bytes) >> 20,
                 " MiB) does not fit on ", device_.str(), " (", e.what(),
                 "); use the streaming loader (LoaderOptions::resident = false, or drop "
                 "--resident-data)");
  }
  copy_bytes(r.x.data(), device_, d.x.data(), Device::cpu(), x_bytes);
  if (y_bytes > 0)
    copy_bytes(r.y.data(), device_,
               d.classification() ? static_cast<const void*>(d.labels.data())
                                  : static_cast<const void*>(d.targets.data()),
               Device::cpu(), y_bytes);
  for (auto& e : r.consumed) e = Event(device_);
  r.order_read = Event(device_);
}

void Loader::start_resident_epoch(std::uint64_t epoch, std::int64_t skip_batches) {
  Impl& im = *impl_;
  Impl::Resident& r = im.res;
  im.order = epoch_order(epoch);
  if (device_.is_cuda()) {
    // The previous epoch's gathers read the device copy of the order: let them finish before it
    // is rewritten (one host wait per epoch).
    if (r.order_read_recorded) r.order_read.synchronize();
    copy_bytes(r.order.data(), device_, im.order.data(), Device::cpu(),
               im.order.size() * sizeof(std::int64_t));
  }
  r.next = skip_batches;
  r.total = batches_per_epoch();
  r.started = true;
  if (im.held >= 0 && device_.is_cuda()) {  // an abandoned epoch's batch: as in start_epoch
    r.consumed[im.held].record(im.held_stream);
    r.consumed_recorded[im.held] = true;
  }
  im.held = -1;
}

std::optional<Batch> Loader::next_resident(NativeStream compute_stream) {
  Impl& im = *impl_;
  Impl::Resident& r = im.res;
  CUTRAIN_CHECK(r.started, "Loader::next before start_epoch");
  if (im.held >= 0 && device_.is_cuda()) {  // on the stream that used it, as in next()
    r.consumed[im.held].record(im.held_stream);
    r.consumed_recorded[im.held] = true;
  }
  im.held = -1;
  if (r.next >= r.total) return std::nullopt;
  const std::int64_t k = r.next++;
  const int slot = static_cast<int>(k % 2);
  const std::int64_t begin = k * options_.batch_size;
  const std::int64_t rows =
      std::min(options_.batch_size, static_cast<std::int64_t>(im.order.size()) - begin);
  auto* base = static_cast<unsigned char*>(r.batch[slot].data());
  if (device_.is_cpu()) {
    gather_host(dataset_, im.order, begin, rows, reinterpret_cast<float*>(base), base + im.x_bytes);
  } else {
    // The batch handed out two calls ago lived in this buffer: work issued on another stream
    // must be done with it.
    if (r.consumed_recorded[slot]) r.consumed[slot].wait_on(compute_stream);
    CUTRAIN_ON_CUDA(const cutrain::detail::cuda::DeviceGuard guard(device_.ordinal());
                    const auto* order = r.order.as<std::int64_t>() + begin;
                    const std::int64_t y_width =
                        dataset_.classification() ? 1 : dataset_.target_width;
                    kernels::launch_gather_rows(r.x.data(), dataset_.features, order, rows, base,
                                                compute_stream);
                    if (r.y.bytes() > 0) kernels::launch_gather_rows(
                        r.y.data(), y_width, order, rows, base + im.x_bytes, compute_stream));
    r.order_read.record(compute_stream);
    r.order_read_recorded = true;
  }
  im.held = slot;
  im.held_stream = compute_stream;
  Batch b;
  b.rows = rows;
  b.index = k;
  b.x = nn::Matrix{reinterpret_cast<float*>(base), rows, dataset_.features, device_};
  if (dataset_.classification()) {
    b.labels = reinterpret_cast<const std::int32_t*>(base + im.x_bytes);
  } else {
    b.targets = nn::Matrix{reinterpret_cast<float*>(base + im.x_bytes), rows, dataset_.target_width,
                           device_};
  }
  return b;
}

}  // namespace cutrain::data
