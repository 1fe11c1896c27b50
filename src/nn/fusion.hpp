#pragma once
// Adjacent layers run as one, for Sequential's layers and a Residual's body alike: a
// BatchNorm2d and the ReLU after it (Note [BatchNorm2d and ReLU in one pass],
// kernels/nn/channel.cuh). Sequential's GPU-only Linear + ReLU GEMM is
// Sequential::relu_follows (Note [Linear and ReLU in one GEMM]).
#include <cstddef>
#include <memory>
#include <vector>

#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/layers.hpp"

namespace cutrain::nn::detail {

/// Whether layers[i] is a BatchNorm2d that a ReLU follows: forward writes the ReLU's output and
/// skips the ReLU; backward runs them as one at the ReLU's position.
inline bool batchnorm_relu_at(const std::vector<std::unique_ptr<Layer>>& layers, std::size_t i) {
  if (i + 1 >= layers.size() || dynamic_cast<const BatchNorm2d*>(layers[i].get()) == nullptr)
    return false;
  const auto* act = dynamic_cast<const Activation*>(layers[i + 1].get());
  return act != nullptr && act->activation() == Activation::Kind::kRelu;
}

}  // namespace cutrain::nn::detail
