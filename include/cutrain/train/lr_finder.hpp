#pragma once
// The learning-rate range test (L. N. Smith, "Cyclical Learning Rates for Training Neural
// Networks", 2017, sec. 3.3; fastai's lr_find, PyTorch Lightning's Tuner.lr_find): train for up
// to `steps` mini-batches with the learning rate growing geometrically,
//     lr_k = min_lr (max_lr / min_lr)^(k / (steps - 1)),   k = 0 .. steps - 1,
// record each batch's loss, and stop once the loss diverges. Then every weight, buffer and
// optimizer state is put back: the sweep only measures.
//
// The loss follows the data as in the Trainer (labels: softmax cross-entropy, targets: MSE); the
// curve is smoothed as fastai smooths it, an exponential moving average with bias correction,
//     avg_k = beta avg_{k-1} + (1 - beta) loss_k,   smoothed_k = avg_k / (1 - beta^(k + 1)),
// and the sweep stops after the first step whose smoothed loss is not finite or exceeds
// diverge_factor x the lowest smoothed loss so far. The suggestion is the lr where the smoothed
// loss falls fastest - the most negative slope against log lr, by central differences, over the
// points before the minimum, the first skip_begin left out (Lightning's default, "steepest"):
// large enough to learn quickly, still below where the loss turns.
//
// The batches are full ones, shuffled anew each pass over the data, whose short last batch is
// left out (fastai's training loader's drop_last) - unless the data is smaller than one batch.
// The optimizer's lr, group scales, weight decay and clipping apply as in training (group lr =
// lr_k x lr_scale). Each step reads its loss back (a device synchronization per step: a sweep
// measures, it does not race). Model, optimizer and the model's forward counters are restored
// exactly, also when the sweep throws.

#include <cstdint>
#include <vector>

#include "cutrain/data/dataset.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"

namespace cutrain::train {

/// The learning-rate range test's sweep: its range, steps, batches, smoothing and when it stops.
struct LrFinderOptions {
  double min_lr = 1e-7;          ///< the sweep's first lr
  double max_lr = 10.0;          ///< the sweep's last lr
  std::int64_t steps = 100;      ///< mini-batches at most (epochs of `data` repeat as needed)
  std::int64_t batch_size = 64;  ///< rows per step
  std::uint64_t seed = 0;        ///< the batches' shuffle
  float clip_norm = 0;           ///< 0: no clipping (the non-finite guard is always on)
  double beta = 0.98;            ///< smoothing; 0: the raw losses
  double diverge_factor = 4.0;   ///< stop once the smoothed loss exceeds this x its minimum
  std::int64_t skip_begin = 10;  ///< points the suggestion leaves out at the start
  /// The loss training will use, for labels (nn::SoftmaxCrossEntropy's; regression data: 0 and
  /// empty).
  float label_smoothing = 0;
  std::vector<float> class_weights{};  ///< as TrainerOptions::class_weights
};

/// The range test's losses by learning rate and the suggested rate.
struct LrFinderResult {
  std::vector<double> lrs;       ///< the lr of each step taken
  std::vector<double> losses;    ///< each step's batch loss (before its update)
  std::vector<double> smoothed;  ///< the smoothed curve
  bool diverged = false;         ///< stopped by the divergence rule (its step is the last entry)
  /// The suggestion (see above); 0 and index -1 when the curve has too few points before its
  /// minimum to take a slope (fewer than skip_begin + 3).
  double suggested_lr = 0;
  std::int64_t suggested_index = -1;  ///< the suggestion's step in lrs
};

LrFinderResult find_lr(nn::Sequential& model, optim::Optimizer& optimizer,
                       const data::Dataset& data, const LrFinderOptions& options = {});

}  // namespace cutrain::train
