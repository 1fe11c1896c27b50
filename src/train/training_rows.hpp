#pragma once
// Note [dropout stream] (src/nn/layers.cpp): for the span of a training loop the model's random
// streams advance by the loop's largest batch per training forward (Sequential::
// set_training_rows), whichever batch comes first - then put back as they were.

#include <cstdint>

#include "cutrain/nn/sequential.hpp"

namespace cutrain::train::detail {

class TrainingRows {
 public:
  TrainingRows(nn::Sequential& model, std::int64_t rows)
      : model_(model), before_(model.training_rows()) {
    model.set_training_rows(rows);
  }
  ~TrainingRows() { model_.set_training_rows(before_); }
  TrainingRows(const TrainingRows&) = delete;
  TrainingRows& operator=(const TrainingRows&) = delete;

 private:
  nn::Sequential& model_;
  std::int64_t before_;
};

}  // namespace cutrain::train::detail
