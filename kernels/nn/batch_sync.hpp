#pragma once
// What the BatchNorm passes need to sum their statistics over the ranks of a data-parallel run,
// shared by the CPU loops (src/nn/batchnorm_backend.cpp) and the kernels' launches (conv.cu).

#include <cstddef>
#include <cstdint>
#include <functional>

#include "cutrain/stream.hpp"

namespace cutrain::kernels {

// Note [synchronized batch statistics]: torch.nn.SyncBatchNorm. In data-parallel training
// (Note [replica rows], cutrain/nn/layer.hpp) a BatchNorm normalizes with its rank's rows alone
// unless the model is given a sum over the ranks (Sequential::set_batch_statistics_sum); then
// each pass's per-channel sums - and the rows counted - are summed over the ranks between the
// passes: the mean's sums, then the squared deviations from that global mean, and in backward
// the two sums dx needs. Every rank thus normalizes, updates its running statistics and
// back-propagates with the statistics of the global batch, and a W-rank run of a BatchNorm
// network is the one-process run with the combined batch up to the order of the ranks'
// additions - as it already is without BatchNorm. dgamma and dbeta stay the rank's own sums:
// the gradient all-reduce averages them like every other parameter gradient, as DDP does. The
// exact two-pass variance is kept (PyTorch's SyncBatchNorm combines per-rank means and
// variances instead), at the price of two collectives in forward and one in backward, each of
// C or 2 C doubles. With one rank the synchronized passes give the unsynchronized bits
// (BatchNormSync.OneRankIsTheUnsynchronizedLayer).
struct BatchSync {
  /// values[0, n) <- the sum over the ranks of each rank's values[0, n): an all-reduce on the
  /// model's device, ordered on `stream`. Null: the batch is this process's alone.
  using Sum = std::function<void(double* values, std::size_t n, NativeStream stream)>;
  const Sum* sum = nullptr;
  /// 2 C + 1 doubles on the model's device, kept from forward to backward: [0] the rows' count
  /// over the ranks (n plane each), [1, C + 1) the channels' sums, then their squared
  /// deviations; backward's two sums per channel in [1, 2 C + 1).
  double* totals = nullptr;
  static std::size_t doubles(std::int64_t channels) {
    return static_cast<std::size_t>(2 * channels + 1);
  }
};

}  // namespace cutrain::kernels
