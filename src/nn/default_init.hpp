#pragma once
// The default weight initialization of a Linear or Conv2d (include/cutrain/nn/sequential.hpp),
// shared by Sequential and by a Residual's body: one rule, applied to one list of layers.

#include <memory>
#include <vector>

#include "cutrain/init.hpp"
#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/layers.hpp"
#include "cutrain/nn/residual.hpp"

namespace cutrain::nn {

// From the activation that follows layer i in the same list: BatchNorm, pooling, Dropout between
// them do not count; another Linear, Conv2d or a Residual ends the search (Xavier then).
inline init::Scheme default_init(const std::vector<std::unique_ptr<Layer>>& layers, std::size_t i) {
  for (std::size_t j = i + 1; j < layers.size(); ++j) {
    if (dynamic_cast<Linear*>(layers[j].get()) != nullptr ||
        dynamic_cast<Conv2d*>(layers[j].get()) != nullptr ||
        dynamic_cast<Residual*>(layers[j].get()) != nullptr)
      break;
    if (const auto* a = dynamic_cast<Activation*>(layers[j].get())) {
      switch (a->activation()) {
        case Activation::Kind::kRelu:
        case Activation::Kind::kGelu:
        case Activation::Kind::kSilu:
        case Activation::Kind::kRelu6:
        case Activation::Kind::kHardswish:
        case Activation::Kind::kElu:
          return init::Scheme::kaiming_uniform();
        case Activation::Kind::kLeakyRelu:
          return init::Scheme::kaiming_uniform(init::Nonlinearity::kLeakyRelu,
                                               init::FanMode::kFanIn, a->negative_slope());
        case Activation::Kind::kTanh:
          return init::Scheme::xavier_uniform(init::gain(init::Nonlinearity::kTanh));
        case Activation::Kind::kSigmoid:
          return init::Scheme::xavier_uniform();
      }
    }
  }
  return init::Scheme::xavier_uniform();
}

// Sets default_init on every Linear and Conv2d of `layers` whose set_init was not called.
inline void choose_default_inits(const std::vector<std::unique_ptr<Layer>>& layers) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (auto* lin = dynamic_cast<Linear*>(layers[i].get()); lin && !lin->init_scheme())
      lin->set_init(default_init(layers, i));
    if (auto* conv = dynamic_cast<Conv2d*>(layers[i].get()); conv && !conv->init_scheme())
      conv->set_init(default_init(layers, i));
  }
}

}  // namespace cutrain::nn
