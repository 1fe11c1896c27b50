#pragma once
// Data augmentation of training batches on their device (Note [augmentation on the device],
// kernels/data/augment.cuh): random translation by up to `shift` pixels with zero fill
// (torchvision's RandomCrop(size, padding=shift)) and a random horizontal flip
// (RandomHorizontalFlip()), each row drawn on its own from (seed, rank, epoch, batch, row), so a
// run is reproducible, a resume replays the same images and either backend gives the same bits.
// Training batches only; evaluation may average over mirror images (EvalAugment).

#include <cstdint>

#include "cutrain/arena.hpp"

namespace cutrain::data {

/// What a Trainer does to each training batch before its forward pass (TrainerOptions::augment).
struct Augment {
  /// One sample's features as an image {C, H, W} (NCHW rows, Note [layer shapes]); required
  /// when augmenting, and its size must be the data's feature count.
  Shape image;
  std::int32_t shift = 0;  ///< translate by up to this many pixels each way, 0 <= shift < H, W
  bool flip = false;       ///< mirror left-right with probability 1/2
  bool enabled() const { return shift > 0 || flip; }  ///< whether anything is drawn
};

/// Throws cutrain::Error, naming the value, unless `a` fits rows of `features` values.
void check_augment(const Augment& a, std::int64_t features);

/// What evaluation and prediction do to each row (test-time augmentation; Note [test-time flips],
/// src/train/inference.cpp): with `flip`, a row's outputs are the mean of the model's outputs
/// on the image and on its left-right mirror image, (f(x) + f(flip(x))) / 2 - airbench's
/// test-time flips - and the loss and the accuracy are the mean's. It pays for a model trained
/// with Augment::flip, which has learned mirror images; for one trained without, it costs.
struct EvalAugment {
  /// One sample's features as an image {C, H, W}; required with `flip`, its size the data's
  /// feature count.
  Shape image;
  bool flip = false;                     ///< average each row's outputs with its mirror image's
  bool enabled() const { return flip; }  ///< whether evaluation runs a second pass
};

/// Throws cutrain::Error, naming the value, unless `a` fits rows of `features` values; `who`
/// begins the message.
void check_eval_augment(const EvalAugment& a, std::int64_t features, const char* who);

/// The key of a fit's draws, from its seed; every data-parallel rank uses it, its rows numbered
/// in the global batch (Note [replica rows], cutrain/nn/layer.hpp).
std::uint64_t augment_key(std::uint64_t seed);

}  // namespace cutrain::data
