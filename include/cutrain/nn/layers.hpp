#pragma once
// The built-in layers (PyTorch names and semantics).
//
//   Linear(in, out, bias)    y = x W^T + b, W [out, in] (torch.nn.Linear); default init He
//                            (kaiming_uniform, relu) or Xavier, chosen by Sequential from the
//                            activation that follows; bias zero.
//   ReLU, LeakyReLU(slope), Tanh, Sigmoid, GELU   (formulas: kernels/nn/activation.cuh)
//   Dropout(p)               inverted dropout with cuRAND masks; identity in eval
//   BatchNorm1d(features, eps, momentum, affine)  (formulas: kernels/nn/batchnorm.cuh)

#include <cstdint>
#include <memory>
#include <optional>

#include "cutrain/init.hpp"
#include "cutrain/nn/layer.hpp"

namespace cutrain::nn {

/// y = x W^T + b (torch.nn.Linear) on cuBLAS(Lt) or OpenBLAS; the bias, and a following ReLU, fused
/// into the GEMM's epilogue on a GPU.
class Linear final : public Layer {
 public:
  /// torch.nn.Linear's arguments; weight [out, in], He or Xavier initialized by what follows.
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  std::string kind() const override { return "Linear"; }
  std::string torch_args() const override;
  void declare(Declarations& d) const override;
  std::int64_t output_features(std::int64_t input_features) const override;
  Shape output_shape(const Shape& input) const override;  ///< flat input only: Flatten first
  void initialize(LayerContext& ctx, std::uint64_t seed) override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

  /// y = relu(x W^T + b) for a Linear that a ReLU follows (Sequential does this on the GPU, Note
  /// [Linear and ReLU in one GEMM]): one cuBLASLt call there, which leaves `pre` unwritten, else
  /// pre = x W^T + b and y = relu(pre). Returns whether `pre` was written. Needs a bias.
  bool forward_relu(LayerContext& ctx, const Matrix& x, Matrix& pre, Matrix& y);
  bool has_bias() const { return bias_; }  ///< bias=true

  /// The weight initialization (Sequential sets it from the next activation unless overridden).
  void set_init(init::Scheme scheme) { init_ = scheme; }
  const std::optional<init::Scheme>& init_scheme() const {
    return init_;
  }                                                   ///< set_init's scheme, if any
  std::int64_t in_features() const { return in_; }    ///< input width
  std::int64_t out_features() const { return out_; }  ///< output width

 private:
  std::int64_t in_, out_;
  bool bias_;
  std::optional<init::Scheme> init_;
};

/// An element-wise activation (ReLU, LeakyReLU, Tanh, Sigmoid, GELU, SiLU, ReLU6, Hardswish,
/// ELU), one rule for both backends (formulas: kernels/nn/activation.cuh).
class Activation final : public Layer {
 public:
  /// torch.nn.ReLU, LeakyReLU, Tanh, Sigmoid, GELU (exact), SiLU, ReLU6, Hardswish, ELU.
  enum class Kind { kRelu, kLeakyRelu, kTanh, kSigmoid, kGelu, kSilu, kRelu6, kHardswish, kElu };
  /// parameter: LeakyReLU's negative_slope, ELU's alpha - torch's defaults (0.01, 1.0) when not
  /// given; ignored by the others.
  explicit Activation(Kind kind, std::optional<float> parameter = std::nullopt);
  /// relu, leaky_relu, tanh, sigmoid, gelu, silu, relu6, hardswish, elu (torch's defaults).
  static Activation parse(std::string_view name);
  std::string kind() const override;
  std::string torch_args() const override;
  Kind activation() const { return kind_; }        ///< which function
  float negative_slope() const { return slope_; }  ///< LeakyReLU's slope
  float alpha() const { return slope_; }           ///< ELU's alpha
  /// ReLU, ReLU6: x, 0 or 6 (16-bit values in both formats) and dy or 0 are the values given.
  bool keeps_16bit_values(bool /*backward*/) const override {
    return kind_ == Kind::kRelu || kind_ == Kind::kRelu6;
  }
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

 private:
  Kind kind_;
  float slope_;
};

/// Inverted dropout (torch.nn.Dropout) with counter-based (Philox) random bits; the identity in
/// eval mode.
class Dropout final : public Layer {
 public:
  /// torch.nn.Dropout(p): p in [0, 1).
  explicit Dropout(float p = 0.5F);
  std::string kind() const override { return "Dropout"; }
  std::string torch_args() const override;
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  bool reads_device_step() const override { return p_ > 0.0F; }  ///< its stream position
  /// It rounds what it stores (Note [16-bit stores], kernels/common/half.cuh).
  bool keeps_16bit_values(bool /*backward*/) const override { return true; }
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;
  float p() const { return p_; }  ///< the drop probability

 private:
  float p_;
  /// The layer's Philox stream: its seed and the numbers one forward pass advances it by;
  /// Note [dropout stream] in src/nn/layers.cpp.
  bool rng_started_ = false;
  std::uint64_t rng_seed_ = 0;
  std::uint64_t rng_stride_ = 0;
};

/// Batch normalization per feature (torch.nn.BatchNorm1d): batch statistics in training, running
/// statistics in eval.
class BatchNorm1d final : public Layer {
 public:
  /// torch.nn.BatchNorm1d's arguments (track_running_stats on).
  explicit BatchNorm1d(std::int64_t features, float eps = 1e-5F, float momentum = 0.1F,
                       bool affine = true);
  std::string kind() const override { return "BatchNorm1d"; }
  std::string torch_args() const override;
  void declare(Declarations& d) const override;
  std::int64_t output_features(std::int64_t input_features) const override;
  Shape output_shape(const Shape& input) const override;  ///< flat input only
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  /// It rounds what it stores (Note [16-bit stores], kernels/common/half.cuh).
  bool keeps_16bit_values(bool /*backward*/) const override { return true; }
  void initialize(LayerContext& ctx, std::uint64_t seed) override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

 private:
  std::int64_t features_;
  float eps_, momentum_;
  bool affine_;
};

}  // namespace cutrain::nn
