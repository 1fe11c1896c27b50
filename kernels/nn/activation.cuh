#pragma once
// Activation rules, value and derivative, shared by the CUDA kernels (kernels/nn/nn.cu) and
// the CPU loops (src/nn/activations.cpp). Derivatives follow PyTorch's backward formulas
// (tanh and sigmoid from the output y, ReLU-family from the input x).
//   ReLU       y = max(x, 0)                    dx = dy * (x > 0)
//   LeakyReLU  y = x > 0 ? x : s x              dx = dy * (x > 0 ? 1 : s)
//   Tanh       y = tanh x                       dx = dy * (1 - y^2)
//   Sigmoid    y = 1 / (1 + e^-x)               dx = dy * y (1 - y)
//   GELU       y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2   (PyTorch's exact form)
//              dx = dy * (Phi(x) + x phi(x)),  phi(x) = e^(-x^2/2) / sqrt(2 pi)
//   SiLU       y = x sigmoid(x) = x / (1 + e^-x)  (torch.nn.SiLU, "swish")
//              dx = dy * s (1 + x (1 - s)),  s = sigmoid(x)   (PyTorch's silu_backward)
//   ReLU6      y = min(max(x, 0), 6)            dx = dy * (0 < x < 6)   (torch's hardtanh(0, 6))
//   Hardswish  y = x min(max(x + 3, 0), 6) / 6  dx = dy * (x < -3 ? 0 : x <= 3 ? x / 3 + 1/2 : 1)
//   ELU        y = x > 0 ? x : a (e^x - 1)      dx = dy * (x > 0 ? 1 : a e^x)   (a: alpha, the
//              layer's parameter; e^x - 1 as expm1 - exact near 0, where PyTorch 1.13's CPU
//              exp(x) - 1 cancels)
// NaN: the ReLU family's comparisons send it to 0 (as ReLU's does here); the others propagate it.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

enum class Activation : int {
  kRelu = 0,
  kLeakyRelu = 1,
  kTanh = 2,
  kSigmoid = 3,
  kGelu = 4,
  kSilu = 5,
  kRelu6 = 6,
  kHardswish = 7,
  kElu = 8
};

CUTRAIN_HD float activation_forward(Activation a, float x, float slope) {
  switch (a) {
    case Activation::kRelu:
      return x > 0.0F ? x : 0.0F;
    case Activation::kLeakyRelu:
      return x > 0.0F ? x : x * slope;
    case Activation::kTanh:
      return tanhf(x);
    case Activation::kSigmoid:
      return 1.0F / (1.0F + expf(-x));
    case Activation::kGelu:
      return 0.5F * x * (1.0F + erff(x * 0.70710678118654752F));
    case Activation::kSilu:
      return x / (1.0F + expf(-x));
    case Activation::kRelu6:
      return x > 0.0F ? (x < 6.0F ? x : 6.0F) : 0.0F;
    case Activation::kHardswish: {
      const float t = x + 3.0F;
      return x * (t > 0.0F ? (t < 6.0F ? t : 6.0F) : 0.0F) / 6.0F;
    }
    case Activation::kElu:
      return x > 0.0F ? x : slope * expm1f(x);
  }
  return x;
}

CUTRAIN_HD float activation_backward(Activation a, float x, float y, float dy, float slope) {
  switch (a) {
    case Activation::kRelu:
      return x > 0.0F ? dy : 0.0F;
    case Activation::kLeakyRelu:
      return x > 0.0F ? dy : dy * slope;
    case Activation::kTanh:
      return dy * (1.0F - y * y);
    case Activation::kSigmoid:
      return dy * (1.0F - y) * y;
    case Activation::kGelu: {
      const float cdf = 0.5F * (1.0F + erff(x * 0.70710678118654752F));
      const float pdf = expf(-0.5F * x * x) * 0.39894228040143268F;
      return dy * (cdf + x * pdf);
    }
    case Activation::kSilu: {
      const float s = 1.0F / (1.0F + expf(-x));
      return dy * (s * (1.0F + x * (1.0F - s)));
    }
    case Activation::kRelu6:
      return x > 0.0F && x < 6.0F ? dy : 0.0F;
    case Activation::kHardswish:
      return x < -3.0F ? 0.0F : (x <= 3.0F ? dy * (x / 3.0F + 0.5F) : dy);
    case Activation::kElu:
      return x > 0.0F ? dy : dy * slope * expf(x);
  }
  return dy;
}

/// Where a batch's numbers lie in its layer's stream, from the stream position of its forward
/// pass (Note [replica rows], cutrain/nn/layer.hpp): segment j - `length` numbers for `length`
/// values - starts at position + first + j x pitch. One process: one segment of the whole batch
/// (first 0). Rank r of W: a segment per row of F values, row j being the global batch's row
/// j W + r (first r F, pitch W F), which the one process with the combined batch would draw.
struct DropoutRows {
  std::uint64_t first = 0;
  std::uint64_t pitch = 0;
  std::size_t length = 0;
  std::size_t rows = 1;
};

/// n values in `rows` rows (n a multiple of rows) of replica `rank` of `world`.
CUTRAIN_HD DropoutRows dropout_rows(std::size_t n, std::size_t rows, std::uint64_t rank,
                                    std::uint64_t world) {
  if (world <= 1 || rows == 0) return {0, 0, n, 1};
  const std::size_t f = n / rows;
  return {rank * f, world * f, f, rows};
}

// Inverted dropout: keep with probability 1 - p (u in (0, 1] from cuRAND), scaled by 1/(1-p).
CUTRAIN_HD float dropout_mask(float u, float p) {
  return u > p ? 1.0F / (1.0F - p) : 0.0F;
}

// The forward pass of one element: the uniform in `mask` becomes the mask; returns y = x * mask.
CUTRAIN_HD float dropout_forward(float& mask, float x, float p) {
  mask = dropout_mask(mask, p);
  return x * mask;
}

}  // namespace cutrain::rules
