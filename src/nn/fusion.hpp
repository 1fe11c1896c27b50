#pragma once
// Adjacent layers that run as one: a BatchNorm2d and the ReLU after it, in Sequential's layers
// and a Residual's body alike (Note [BatchNorm2d and ReLU in one pass], kernels/nn/channel.cuh),
// and on the GPU a Linear and the ReLU after it, in Sequential's layers (Note [Linear and ReLU
// in one GEMM], below).
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

// Note [Linear and ReLU in one GEMM]: on the GPU a Linear (with a bias) directly followed by a ReLU
// is one cuBLASLt matmul with the RELU_BIAS epilogue - the bias and max(., 0) applied as the GEMM
// writes its tile - instead of the GEMM, the bias kernel and the ReLU kernel: for the default
// MLP 2 launches and 2 passes over an activation fewer per forward. The values are the same
// (the epilogue computes max(acc + b, 0) in fp32 as the two kernels do; the GEMM itself may
// differ from cublasSgemm's in accumulation order, as with the BIAS epilogue). The Linear's own
// output - the pre-activation - is then never written, and nothing reads it: Linear::backward
// ignores its output, and the ReLU's backward reads y in place of x (the same test, y > 0 iff
// x > 0). The CPU runs the layers one by one.

/// Whether layers[i] is a Linear with a bias that a ReLU follows and `epilogue` (a GPU with
/// cuBLASLt) can fuse them: forward writes the ReLU's output and skips the ReLU.
inline bool linear_relu_at(const std::vector<std::unique_ptr<Layer>>& layers, std::size_t i,
                           bool epilogue) {
  if (!epilogue || i + 1 >= layers.size()) return false;
  const auto* lin = dynamic_cast<const Linear*>(layers[i].get());
  const auto* act = dynamic_cast<const Activation*>(layers[i + 1].get());
  return lin != nullptr && lin->has_bias() && act != nullptr &&
         act->activation() == Activation::Kind::kRelu;
}

}  // namespace cutrain::nn::detail
