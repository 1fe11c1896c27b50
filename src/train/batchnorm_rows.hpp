#pragma once
// A batch of one row cannot be batch-normalized in training (BatchNorm1d's variance of one value;
// BatchNorm2d's over a 1x1 plane): Trainer::fit and find_lr refuse it before their first step,
// naming the layer and the fix, rather than ending mid-epoch in BatchNorm's own check.
#include <cstdint>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/layers.hpp"
#include "cutrain/nn/residual.hpp"
#include "cutrain/nn/sequential.hpp"

namespace cutrain::train::detail {

// `rows` split into batches of `batch_size` (the last one dropped when `drop_last`).
inline void check_batchnorm_rows(nn::Sequential& model, std::int64_t rows, std::int64_t batch_size,
                                 bool drop_last) {
  const bool every_batch = batch_size == 1;
  if (!every_batch && (drop_last || rows % batch_size != 1)) return;
  nn::for_each_layer(model, [&](const nn::Layer& layer, const Shape& input, const std::string& at) {
    const bool bn1d = dynamic_cast<const nn::BatchNorm1d*>(&layer) != nullptr;
    const bool bn2d =
        dynamic_cast<const nn::BatchNorm2d*>(&layer) != nullptr && numel(input) == input[0];
    if (every_batch)
      CUTRAIN_CHECK(!bn1d && !bn2d, "batch_size = 1 gives every batch 1 row, which layer ", at,
                    " (", layer.kind(),
                    ") cannot normalize in training: choose a batch size of 2 or more");
    CUTRAIN_CHECK(!bn1d && !bn2d, "the last batch of each epoch holds 1 row (", rows,
                  " rows in batches of ", batch_size, "), which layer ", at, " (", layer.kind(),
                  ") cannot normalize in training: drop it (drop_last, cutrain-train "
                  "--drop-last) or choose another batch size");
  });
}

}  // namespace cutrain::train::detail
