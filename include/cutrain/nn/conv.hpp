#pragma once
// Convolutional layers (PyTorch names, arguments and semantics), over NCHW images (Note [layer
// shapes] in include/cutrain/nn/layer.hpp: a batch row holds one sample's C x H x W values).
//
//   Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=true,
//          groups=1)
//       y[n, o] = b[o] + sum_c W[o, c] (star) x[n, c]; weight [out, in, kh, kw]. With groups G
//       (depthwise when G = in = out), output o sums only the in/G channels of its group - o /
//       (out/G) - and the weight is [out, in/G, kh, kw] (Note [grouped convolution],
//       kernels/nn/conv.cuh); in and out must be multiples of G.
//       Output size floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1. Default init as
//       Linear's: He (kaiming_uniform, relu gain) when a ReLU-family activation follows, else
//       Xavier (fans as torch's: in/G kh kw and out kh kw); bias zero. On a GPU cuDNN's graph API
//       runs it where cuDNN is there and has a deterministic plan (Note [convolutions on cuDNN],
//       src/nn/conv_cudnn.hpp) - not yet for G > 1 -, else im2col + GEMM per chunk of samples
//       (Note [convolution as one GEMM per chunk], kernels/nn/conv.cuh); on the CPU per sample.
//   MaxPool2d(kernel_size, stride=kernel_size, padding=0)      (ceil_mode off, dilation 1)
//   AvgPool2d(kernel_size, stride=kernel_size, padding=0)      (count_include_pad on)
//   AdaptiveAvgPool2d(output_size)                             ((1, 1): global average pooling)
//       formulas: kernels/nn/pool.cuh
//   BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=true)
//       BatchNorm1d's formulas per channel over N x H x W values (kernels/nn/channel.cuh)
//   Flatten()                     [C, H, W] -> [C H W]   (torch.nn.Flatten(): start_dim 1)
//   Unflatten(dim, sizes)         e.g. Unflatten(1, {1, 28, 28}): the loader's flat rows as images
//
// Shapes that do not fit are refused at Sequential::build, naming the layer and the shapes.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cutrain/init.hpp"
#include "cutrain/nn/layer.hpp"

namespace cutrain::rules {
struct ConvGeometry;  // kernels/nn/conv.cuh
}

namespace cutrain::nn {

namespace cudnn_conv {
class Plans;  // src/nn/conv_cudnn.hpp
}

/// A 2-D size argument: one number for both dimensions (kernel_size=3) or {h, w}.
struct Size2 {
  std::int64_t h = 1;  ///< height
  std::int64_t w = 1;  ///< width
  /// One size for both dimensions (torch's int argument).
  Size2(std::int64_t both)
      : h(both), w(both) {}  // NOLINT(google-explicit-constructor): torch's int
  Size2(std::int64_t height, std::int64_t width) : h(height), w(width) {}  ///< torch's (h, w)
  bool operator==(const Size2&) const = default;                           ///< both sizes equal
};

/// 2-D convolution over NCHW activations (torch.nn.Conv2d, grouped and depthwise included):
/// cuDNN's graph API on a GPU where it has a deterministic plan, else im2col and one GEMM (a
/// strided batch over the groups) per chunk on cuBLAS; on the CPU per sample.
class Conv2d final : public Layer {
 public:
  /// torch.nn.Conv2d's arguments; in and out channels must be multiples of groups.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Size2 stride = 1,
         Size2 padding = 0, Size2 dilation = 1, bool bias = true, std::int64_t groups = 1);
  std::string kind() const override { return "Conv2d"; }
  std::string torch_args() const override;
  void declare(Declarations& d) const override;
  Shape output_shape(const Shape& input) const override;
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  /// It rounds what it stores (Note [16-bit stores], kernels/common/half.cuh).
  bool keeps_16bit_values(bool /*backward*/) const override { return true; }
  void initialize(LayerContext& ctx, std::uint64_t seed) override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

  void set_init(init::Scheme scheme) {
    init_ = scheme;
  }  ///< the weight initialization instead of the default
  const std::optional<init::Scheme>& init_scheme() const {
    return init_;
  }                                                   ///< set_init's scheme, if any
  std::int64_t in_channels() const { return in_; }    ///< C_in
  std::int64_t out_channels() const { return out_; }  ///< C_out
  bool has_bias() const { return bias_; }             ///< bias=true
  std::int64_t groups() const { return groups_; }     ///< G (1: a dense convolution)
  /// Samples lowered at once on a GPU for this input shape: the im2col buffer holds at most
  /// kLoweredFloats floats (at least one sample); larger GEMMs and fewer launches favour large
  /// chunks. Not tuned on a GPU yet. The CPU lowers one sample at a time instead (Note
  /// [convolution per sample on the CPU], src/nn/conv_backend.hpp).
  static constexpr std::int64_t kLoweredFloats = std::int64_t{1} << 22;
  /// Samples lowered per GEMM for a batch of `batch` samples of shape `input`.
  std::int64_t chunk_samples(std::int64_t batch, const Shape& input) const;
  /// How the last forward on a GPU ran: "cuDNN <version> (engine <index>)", or "lowering (...)"
  /// with the reason cuDNN did not run it; "" before any GPU forward.
  std::string gpu_algorithm() const;

 private:
  // The workspace's lowering part; the bias gradient's reduction scratch follows it.
  std::size_t lowering_floats(std::int64_t batch, const Shape& input) const;
  rules::ConvGeometry geometry_of(const Shape& input) const;

  std::int64_t in_, out_;
  Size2 kernel_, stride_, padding_, dilation_;
  bool bias_;
  std::int64_t groups_;
  std::optional<init::Scheme> init_;
  std::shared_ptr<cudnn_conv::Plans> cudnn_;  // made on the first GPU forward
};

/// MaxPool2d, AvgPool2d and AdaptiveAvgPool2d: one class, the window rule chosen by kind.
class Pool2d : public Layer {
 public:
  /// MaxPool2d, AvgPool2d or AdaptiveAvgPool2d.
  enum class Kind { kMax, kAvg, kAdaptiveAvg };  ///< MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
  std::string kind() const override;
  std::string torch_args() const override;
  Shape output_shape(const Shape& input) const override;
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;
  Kind pool() const { return kind_; }  ///< which pooling
  /// Max pooling: its output is one of its inputs, and its input gradient one dy (or 0) where
  /// the windows do not overlap (stride >= kernel), else a sum.
  bool keeps_16bit_values(bool backward) const override;

 protected:
  /// stride: the kernel size when absent (torch's default).
  Pool2d(Kind kind, Size2 kernel, std::optional<Size2> stride, Size2 padding);

 private:
  Kind kind_;
  Size2 kernel_, stride_, padding_;  ///< kAdaptiveAvg: kernel_ is the output size
};

/// Max pooling (torch.nn.MaxPool2d, ceil_mode off); the first maximum of a window is kept.
class MaxPool2d final : public Pool2d {
 public:
  /// torch.nn.MaxPool2d's arguments (ceil_mode off).
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                     Size2 padding = 0)
      : Pool2d(Kind::kMax, kernel_size, stride, padding) {}
};
/// Average pooling (torch.nn.AvgPool2d, count_include_pad as PyTorch's default).
class AvgPool2d final : public Pool2d {
 public:
  /// torch.nn.AvgPool2d's arguments (count_include_pad on).
  explicit AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                     Size2 padding = 0)
      : Pool2d(Kind::kAvg, kernel_size, stride, padding) {}
};
/// Adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d; (1, 1) is global
/// average pooling).
class AdaptiveAvgPool2d final : public Pool2d {
 public:
  /// torch.nn.AdaptiveAvgPool2d's output size ((1, 1): global average pooling).
  explicit AdaptiveAvgPool2d(Size2 output_size)
      : Pool2d(Kind::kAdaptiveAvg, output_size, std::nullopt, 0) {}
};

/// Batch normalization over N, H and W per channel (torch.nn.BatchNorm2d): batch statistics in
/// training, running statistics in eval.
class BatchNorm2d final : public Layer {
 public:
  /// torch.nn.BatchNorm2d's arguments (track_running_stats on).
  explicit BatchNorm2d(std::int64_t num_features, float eps = 1e-5F, float momentum = 0.1F,
                       bool affine = true);
  std::string kind() const override { return "BatchNorm2d"; }
  std::string torch_args() const override;
  void declare(Declarations& d) const override;
  Shape output_shape(const Shape& input) const override;
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  /// It rounds what it stores (Note [16-bit stores], kernels/common/half.cuh).
  bool keeps_16bit_values(bool /*backward*/) const override { return true; }
  void initialize(LayerContext& ctx, std::uint64_t seed) override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;
  /// This layer and the ReLU after it in one pass (Sequential and Residual do this, Note
  /// [BatchNorm2d and ReLU in one pass]): `relu_y` = relu(BatchNorm2d(x)), the bits of the two
  /// layers run one by one.
  void forward_relu(LayerContext& ctx, const Matrix& x, Matrix& relu_y);
  /// The backward of forward_relu: dx from the ReLU's output `relu_y` and the gradient above the
  /// ReLU, `dy_relu` (and this layer's parameter gradients).
  void backward_relu(LayerContext& ctx, const Matrix& x, const Matrix& relu_y,
                     const Matrix& dy_relu, Matrix& dx);

 private:
  void run_forward(LayerContext& ctx, const Matrix& x, Matrix& y, bool relu);
  void run_backward(LayerContext& ctx, const Matrix& x, const float* relu_y, const Matrix& dy,
                    Matrix& dx);

  std::int64_t features_;
  float eps_, momentum_;
  bool affine_;
};

/// Flattens one sample's shape to a row (torch.nn.Flatten()).
class Flatten final : public Layer {
 public:
  std::string kind() const override { return "Flatten"; }
  bool keeps_16bit_values(bool /*backward*/) const override { return true; }  ///< a copy
  Shape output_shape(const Shape& input) const override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;
};

/// Turns rows into a sample shape such as {C, H, W} (torch.nn.Unflatten(1, sizes)).
class Unflatten final : public Layer {
 public:
  /// dim counts the batch as dimension 0 (torch's): dim 1 is the first dimension of a sample.
  Unflatten(std::int64_t dim, Shape sizes);
  std::string kind() const override { return "Unflatten"; }
  bool keeps_16bit_values(bool /*backward*/) const override { return true; }  ///< a copy
  std::string torch_args() const override;
  Shape output_shape(const Shape& input) const override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

 private:
  std::int64_t dim_;
  Shape sizes_;
};

}  // namespace cutrain::nn
