#pragma once
// The trainer's state beside its public members, shared by src/train/trainer.cpp (fit, resume)
// and src/train/evaluate.cpp.

#include <memory>

#include "cutrain/buffer.hpp"
#include "cutrain/clip.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/stream.hpp"
#include "cutrain/train/trainer.hpp"
#include "src/train/gradient_accumulator.hpp"
#include "src/train/weight_average.hpp"

namespace cutrain::train {

struct Trainer::Impl {
  explicit Impl(float label_smoothing) : loss(label_smoothing) {}
  Stream stream;
  nn::SoftmaxCrossEntropy loss;
  std::unique_ptr<GradClipper> clipper;
  Buffer grad;         // dlogits, [batch, classes]
  Buffer step_losses;  // per-step mean losses of the epoch (device)
  Buffer step_norms;   // per-step pre-clip norms of the epoch (device)
  Buffer eval_labels;
  std::unique_ptr<Arena> best_params, best_buffers;
  std::unique_ptr<detail::GradientAccumulator> accumulator;  // Note [gradient accumulation]
  std::unique_ptr<detail::WeightAverage> average;            // Note [weight averaging]
};

}  // namespace cutrain::train
