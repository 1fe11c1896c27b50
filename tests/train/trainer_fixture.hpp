#pragma once
// The trainer tests' shared pieces (trainer_test.cpp, resume_test.cpp): a temp path, three
// separable Gaussian blobs in 8 dimensions, a small MLP with BatchNorm and Dropout, and the
// options they train with.

#include <cstdint>
#include <memory>
#include <string>

#include "cutrain/data.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"
#include "support/blobs.hpp"
#include "support/temp_path.hpp"

namespace cutrain::train::testing_fixture {

inline std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_trainer_test", name);
}

// Three Gaussian blobs in 8 dimensions: linearly separable with margin.
inline data::Dataset blobs(std::int64_t rows, std::uint32_t seed) {
  return testing::blobs(rows, 8, 3, 2.0F, 0.6F, seed);
}

inline nn::Sequential model(std::uint64_t seed, Device device = Device::cpu()) {
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 32).emplace<nn::BatchNorm1d>(32);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.1F);
  m.emplace<nn::Linear>(32, 3);
  m.build(device, seed);
  return m;
}

inline TrainerOptions options(std::int64_t epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.seed = 9;
  o.clip_norm = 1.0F;
  o.schedule = std::make_shared<optim::CosineLr>(0.01, 60);
  o.progress = false;
  return o;
}

}  // namespace cutrain::train::testing_fixture
