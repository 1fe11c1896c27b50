#pragma once
// Note [augmentation on the device]: random translation and horizontal flip of image rows
// (torchvision's RandomCrop(H, padding=shift) then RandomHorizontalFlip(), zero fill), applied
// to a training batch where it lies - on the device, after the copy or the resident gather - by
// one rule both backends call. A row's draw is a counter-based hash of (key, position): the key
// is fixed by the seed, the position by (epoch, the batch's slot in the epoch, the row in the
// global batch - Note [replica rows], cutrain/nn/layer.hpp: W ranks draw what one process with
// their combined batch draws), and the slot and the epoch are read from device memory (Note [epoch
// records on the device]). So the same seed gives the same images on every run and backend, a
// resume (which restores the epoch and the slot) replays them, the launch shape changes nothing,
// and a step captured in a CUDA graph draws anew on every replay.

#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

/// Where a batch's draws come from: values fixed for a whole fit, and the epoch and the batch's
/// slot in device memory.
struct AugmentArgs {
  std::uint64_t key = 0;                ///< from the seed (data::augment_key)
  std::int64_t channels = 0;            ///< C, H, W of a row (NCHW)
  std::int64_t height = 0;              ///< H
  std::int64_t width = 0;               ///< W
  std::int32_t shift = 0;               ///< translate by up to this many pixels each way
  bool flip = false;                    ///< mirror left-right with probability 1/2
  std::int64_t batches_per_epoch = 0;   ///< the fit's, to number batches across epochs
  std::int64_t max_rows = 0;            ///< the fit's largest batch, to number rows
  std::int64_t rank = 0;                ///< Note [replica rows]: row j is global row j W + r
  std::int64_t world = 1;               ///< W, the ranks sharing each global batch
  const std::int64_t* epoch = nullptr;  ///< the epoch (0-based), in the batch's device memory
  const std::int64_t* slot = nullptr;   ///< the batch's index in its epoch, likewise
};

/// One row's transform: out(c, i, j) = in(c, i + dy, j' + dx), j' = W - 1 - j when flipped,
/// else j; 0 where that falls outside the image.
struct AugmentDraw {
  std::int32_t dy = 0;
  std::int32_t dx = 0;
  bool flip = false;
};

/// splitmix64's finalizer: consecutive inputs give unrelated outputs.
CUTRAIN_HD std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// An integer uniform in [0, span) from 32 random bits (Lemire's multiply-shift: no division,
/// a bias below span / 2^32).
CUTRAIN_HD std::int32_t uniform_below(std::uint32_t bits, std::uint32_t span) {
  return static_cast<std::int32_t>((static_cast<std::uint64_t>(bits) * span) >> 32);
}

/// Row `row` of batch `slot` of epoch `epoch`: the offsets uniform in [-shift, shift] (as
/// RandomCrop's corner in [0, 2 shift] of the padded image), the flip a fair coin. Numbered as
/// the global batch's row (Note [replica rows]), whose largest batch has max_rows x W rows.
CUTRAIN_HD AugmentDraw augment_draw(const AugmentArgs& a, std::int64_t epoch, std::int64_t slot,
                                    std::int64_t row) {
  const auto position = static_cast<std::uint64_t>(
      (epoch * a.batches_per_epoch + slot) * a.max_rows * a.world + row * a.world + a.rank);
  const std::uint64_t bits = mix64(a.key ^ (0x9E3779B97F4A7C15ULL * (position + 1)));
  const std::uint64_t more = mix64(bits);
  const auto span = static_cast<std::uint32_t>(2 * a.shift + 1);
  AugmentDraw d;
  d.dy = uniform_below(static_cast<std::uint32_t>(bits >> 32), span) - a.shift;
  d.dx = uniform_below(static_cast<std::uint32_t>(bits), span) - a.shift;
  d.flip = a.flip && (more >> 63) != 0;
  return d;
}

/// Element e (c H W + i W + j) of the transformed row, read from the row `in`.
CUTRAIN_HD float augment_value(const AugmentArgs& a, const AugmentDraw& d, const float* in,
                               std::int64_t e) {
  const std::int64_t plane = a.height * a.width;
  const std::int64_t c = e / plane;
  const std::int64_t i = (e - c * plane) / a.width;
  const std::int64_t j = e - c * plane - i * a.width;
  const std::int64_t si = i + d.dy;
  const std::int64_t sj = (d.flip ? a.width - 1 - j : j) + d.dx;
  const bool inside = si >= 0 && si < a.height && sj >= 0 && sj < a.width;
  return inside ? in[c * plane + si * a.width + sj] : 0.0F;
}

/// Note [test-time flips]: the element of a row whose value lands at e when the row's image is
/// mirrored left-right - each run of `width` values reversed, whatever C and H (augment_value's
/// flip with no shift). Its own inverse.
CUTRAIN_HD std::int64_t mirror_source(std::int64_t e, std::int64_t width) {
  const std::int64_t j = e % width;
  return e - j + (width - 1 - j);
}

/// Note [test-time flips]: a row's output from the model's outputs on the image and on its
/// mirror image - their mean, (a + b) / 2 as PyTorch's `(model(x) + model(x.flip(-1))) / 2`
/// rounds it (the halving is exact).
CUTRAIN_HD float mean_of_two(float a, float b) {
  return (a + b) * 0.5F;
}

}  // namespace cutrain::rules
