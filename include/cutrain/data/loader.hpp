#pragma once
// Shuffled mini-batches streamed to the device.
//
// A background thread gathers the rows of upcoming batches into pinned host buffers and, on
// CUDA, starts each batch's host-to-device copy on the loader's own stream; `prefetch` slots
// cycle between a free and a full queue (Caffe's prefetcher). next() hands the caller the
// oldest full slot and makes the caller's compute stream wait for its copy with an event - no
// host synchronization; the slot returns to the free queue at the following next(), after an
// event recorded on the compute stream, so its device buffer is not overwritten while still in
// use. On the CPU the same pipeline runs without the copy. An exception on the loader thread is
// rethrown by next(); ending an epoch early (start_epoch or destruction) stops and joins the
// thread cleanly.
//
// Resident mode (LoaderOptions::resident, Note [resident datasets]): no thread and no copies
// per batch; the dataset is on the device and next() gathers the batch there.
//
// Order: each epoch visits permutation(rows, seed, epoch) (or 0..rows-1 without shuffle) in
// batches of batch_size, the last partial batch kept unless drop_last.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cutrain/data/dataset.hpp"
#include "cutrain/nn/layer.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::data {

/// How a Loader batches: batch size, shuffling and its seed, the last partial batch, prefetch
/// depth, data-parallel sharding.
struct LoaderOptions {
  std::int64_t batch_size = 64;  ///< rows per batch
  bool shuffle = true;           ///< a seeded permutation per epoch
  bool drop_last = false;        ///< drop the last partial batch
  std::uint64_t seed = 0;        ///< the permutation's seed
  int prefetch = 3;              ///< slots in flight (2 or more)
  /// Data-parallel sharding, as torch.utils.data.DistributedSampler: the epoch's order is padded
  /// (repeating its first entries) to a multiple of `world` and rank r takes positions
  /// r, r + world, r + 2 world, ... So W ranks with batch B see, step by step, exactly the
  /// samples one process with batch W * B would. pad = false keeps the ranks' shards ragged
  /// (evaluation: no sample counted twice).
  int rank = 0;
  int world = 1;    ///< ranks sharing the data (DistributedSampler's num_replicas)
  bool pad = true;  ///< pad the order to a multiple of world (see above)
  // Note [resident datasets]: keep the whole dataset on the loader's device - uploaded once, at
  /// construction - and gather each batch there from the epoch's order, on the caller's compute
  /// stream: no loader thread, no pinned staging, no host-to-device copy per batch (airbench
  /// keeps small datasets on the GPU this way). The batches are the streaming pipeline's, bit for
  /// bit. The dataset must fit in device memory beside the model (Fashion-MNIST's training set:
  /// 188 MB); on the CPU it is read in place.
  bool resident = false;
};

/// One mini-batch on the loader's device: features, labels or targets, and its row count.
struct Batch {
  nn::Matrix x;                          ///< [rows, features] on the loader's device
  const std::int32_t* labels = nullptr;  ///< [rows] (classification)
  nn::Matrix targets;                    ///< [rows, target_width] (regression)
  std::int64_t rows = 0;                 ///< rows in this batch
  std::int64_t index = 0;                ///< batch number within the epoch
};

/// The groups of `size` that `n` items make (n, size > 0): n / size, and one more for a partial
/// group unless `drop_partial` - an epoch's batches (rows, batch size, drop_last), an epoch's
/// optimizer steps (batches, accumulation), a rank's padded share (rows, ranks). Rounded up
/// without n + size - 1, which overflows for a size near 2^63.
inline std::int64_t groups_of(std::int64_t n, std::int64_t size, bool drop_partial = false) {
  return n / size + (!drop_partial && n % size != 0 ? 1 : 0);
}

/// Streams shuffled mini-batches of a Dataset to a device: pinned, prefetched and copied
/// asynchronously, or gathered from a resident copy on the GPU.
class Loader {
 public:
  /// `dataset` must outlive the loader.
  Loader(const Dataset& dataset, Device device, const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// Starts (or restarts) the pipeline for `epoch`, skipping its first `skip_batches` batches
  /// (for exact resume). Stops any epoch still running. A batch handed out by next() and not yet
  /// given back (an epoch abandoned mid-way) is fenced as next() fences every batch: its buffer
  /// is reused only after the work issued so far on the compute stream that next() was given -
  /// so that stream must still exist here.
  void start_epoch(std::uint64_t epoch, std::int64_t skip_batches = 0);
  /// The next batch of the current epoch, or nullopt at its end. The batch stays valid until the
  /// next call; work using it must be issued on `compute_stream`.
  std::optional<Batch> next(NativeStream compute_stream = nullptr);

  std::int64_t batches_per_epoch() const;  ///< this rank's batches per epoch
  std::int64_t rows_per_epoch() const;     ///< this rank's share
  /// The most rows a batch can have: batch_size, or the whole share when that is smaller (a batch
  /// size above the data set's means one full batch per epoch, as torch's DataLoader gives).
  /// The staging buffers are this large, not batch_size.
  std::int64_t max_batch_rows() const;
  const LoaderOptions& options() const { return options_; }  ///< as constructed
  Device device() const { return device_; }                  ///< where batches are delivered

 private:
  std::vector<std::int64_t> epoch_order(std::uint64_t epoch) const;
  void init_resident();
  void start_resident_epoch(std::uint64_t epoch, std::int64_t skip_batches);
  std::optional<Batch> next_resident(NativeStream compute_stream);

  struct Impl;
  const Dataset& dataset_;
  Device device_;
  LoaderOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cutrain::data
