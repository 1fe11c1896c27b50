// Conv2d: shapes, validation and the lowering: the GPU's chunk loop (Note [convolution as one GEMM
// per chunk]) or the CPU's per-sample groups (Note [convolution per sample on the CPU]), the same
// rules on both backends.
#include <algorithm>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "kernels/nn/channel.cuh"
#include "src/nn/context.hpp"
#include "src/nn/conv_backend.hpp"
#if CUTRAIN_WITH_CUDA
#include "src/nn/conv_cudnn.hpp"
#endif
#include "src/nn/layer_common.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn {
namespace {

std::string size2(const char* name, Size2 s) {
  return cutrain::detail::cat(name, "=(", s.h, ", ", s.w, ")");
}

}  // namespace

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Size2 stride,
               Size2 padding, Size2 dilation, bool bias, std::int64_t groups)
    : in_(in_channels),
      out_(out_channels),
      kernel_(kernel_size),
      stride_(stride),
      padding_(padding),
      dilation_(dilation),
      bias_(bias),
      groups_(groups) {
  CUTRAIN_CHECK(in_channels > 0 && out_channels > 0, "Conv2d(", in_channels, ", ", out_channels,
                "): both channel counts must be positive");
  // PyTorch's checks and words (torch.nn.Conv2d's constructor).
  CUTRAIN_CHECK(groups > 0, "Conv2d(", in_channels, ", ", out_channels, "): groups = ", groups,
                " must be a positive integer");
  CUTRAIN_CHECK(in_channels % groups == 0, "Conv2d(", in_channels, ", ", out_channels,
                "): in_channels must be divisible by groups (", in_channels, " by ", groups, ")");
  CUTRAIN_CHECK(out_channels % groups == 0, "Conv2d(", in_channels, ", ", out_channels,
                "): out_channels must be divisible by groups (", out_channels, " by ", groups, ")");
  CUTRAIN_CHECK(kernel_.h > 0 && kernel_.w > 0, "Conv2d: ", size2("kernel_size", kernel_),
                " must be positive");
  CUTRAIN_CHECK(stride_.h > 0 && stride_.w > 0, "Conv2d: ", size2("stride", stride_),
                " must be positive");
  CUTRAIN_CHECK(padding_.h >= 0 && padding_.w >= 0, "Conv2d: ", size2("padding", padding_),
                " must be >= 0");
  CUTRAIN_CHECK(dilation_.h > 0 && dilation_.w > 0, "Conv2d: ", size2("dilation", dilation_),
                " must be positive");
}

std::string Conv2d::torch_args() const {
  using detail::pair;
  return cutrain::detail::cat("{\"in_channels\": ", in_, ", \"out_channels\": ", out_,
                              ", \"kernel_size\": ", pair(kernel_.h, kernel_.w),
                              ", \"stride\": ", pair(stride_.h, stride_.w),
                              ", \"padding\": ", pair(padding_.h, padding_.w),
                              ", \"dilation\": ", pair(dilation_.h, dilation_.w),
                              // Only when grouped: the modules recorded in files written before
                              // groups existed compare equal to today's (Note [architecture in
                              // exports]).
                              groups_ != 1 ? cutrain::detail::cat(", \"groups\": ", groups_) : "",
                              ", \"bias\": ", bias_ ? "true" : "false", "}");
}

void Conv2d::declare(Declarations& d) const {
  d.parameter("weight", {out_, in_ / groups_, kernel_.h, kernel_.w}, kDecayGroup);
  if (bias_) d.parameter("bias", {out_}, kNoDecayGroup);
}

namespace {
rules::ConvGeometry geometry(const Shape& in, std::int64_t out, Size2 k, Size2 s, Size2 p, Size2 d,
                             std::int64_t groups) {
  return rules::conv_geometry(in[0], in[1], in[2], out, k.h, k.w, s.h, s.w, p.h, p.w, d.h, d.w,
                              groups);
}
}  // namespace

rules::ConvGeometry Conv2d::geometry_of(const Shape& input) const {
  return geometry(input, out_, kernel_, stride_, padding_, dilation_, groups_);
}

Shape Conv2d::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(input.size() == 3, "Conv2d(", in_, ", ", out_, ") takes images [C, H, W] but ",
                "its input has shape ", shape_str(input),
                (input.size() == 1 ? ": add Unflatten(1, {C, H, W}) before it" : ""));
  CUTRAIN_CHECK(input[0] == in_, "Conv2d(", in_, ", ", out_, ") expects ", in_,
                " input channels but its input has ", input[0], " (shape ", shape_str(input), ")");
  const rules::ConvGeometry g = geometry_of(input);
  CUTRAIN_CHECK(g.ho > 0 && g.wo > 0, "Conv2d(", in_, ", ", out_, "): the ",
                size2("kernel_size", kernel_), " with ", size2("dilation", dilation_),
                " spans more than the padded input (", input[1] + 2 * padding_.h, ", ",
                input[2] + 2 * padding_.w, ") of shape ", shape_str(input));
  return {out_, g.ho, g.wo};
}

std::int64_t Conv2d::chunk_samples(std::int64_t batch, const Shape& input) const {
  const rules::ConvGeometry g = geometry_of(input);
  return std::clamp<std::int64_t>(kLoweredFloats / std::max<std::int64_t>(1, g.k() * g.p()), 1,
                                  std::max<std::int64_t>(1, batch));
}

// The lowered chunk col [K, nb P] (dcol reuses it) and the GEMM-ordered output [Co, nb P]; the
// CPU's per-sample lowering (Note [convolution per sample on the CPU]) or the chunks: the layer
// does not know its device here, so the larger of the two (both are small beside a chunk).
std::size_t Conv2d::lowering_floats(std::int64_t batch, const Shape& input) const {
  const rules::ConvGeometry g = geometry_of(input);
  const auto floats =
      std::max(static_cast<std::size_t>(chunk_samples(batch, input) * g.p() * (g.k() + g.co)),
               backend::conv_cpu_workspace_floats(g, batch));
  return floats + floats % 2;  // the bias gradient's double scratch after it stays aligned
}

std::size_t Conv2d::workspace_floats(std::int64_t batch, const Shape& input) const {
  const rules::ConvGeometry g = geometry_of(input);
  const std::int64_t scratch = bias_ ? rules::channel_scratch_doubles(batch, g.co, g.p()) : 0;
  return lowering_floats(batch, input) + 2 * static_cast<std::size_t>(scratch);
}

void Conv2d::initialize(LayerContext& ctx, std::uint64_t seed) {
  detail::initialize_weight_and_bias(ctx, init_.value_or(init::Scheme::kaiming_uniform()), bias_,
                                     seed);
}

// On the CPU per sample, on a GPU on cuDNN or per chunk of nb samples (conv_backend.hpp).
void Conv2d::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const backend::Exec e = exec_of(ctx);
  const rules::ConvGeometry g = geometry_of(ctx.input_shape());
  const std::int64_t nb = chunk_samples(x.rows, ctx.input_shape());
  const float* w = ctx.parameter("weight").data;
  const float* b = bias_ ? ctx.parameter("bias").data : nullptr;
  if (e.device.is_cpu()) {
    backend::conv_forward_cpu(e, g, x.data, x.rows, w, b, y.data, ctx.workspace(),
                              backend::store_of(e));
    return;
  }
#if CUTRAIN_WITH_CUDA
  // Note [convolutions on cuDNN]: in the lowering's workspace, where cuDNN has a plan.
  if (!cudnn_) cudnn_ = std::make_shared<cudnn_conv::Plans>();
  void* handle = cudnn_conv::handle(ctx.resources());
  const std::size_t bytes = lowering_floats(x.rows, ctx.input_shape()) * sizeof(float);
  if (handle != nullptr && cudnn_->forward(e, handle, g, x.rows, x.data, w, b, y.data,
                                           ctx.workspace(), bytes, backend::store_of(e)))
    return;
  if (handle == nullptr) cudnn_->set_last("lowering (" + ctx.resources().cudnn_why + ")");
#endif
  backend::conv_forward_chunks(e, g, nb, x.data, x.rows, w, b, y.data, ctx.workspace(),
                               backend::store_of(e));
}

// db = per-channel sums of dy; then dW and dx as the forward runs.
void Conv2d::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                      Matrix& dx) {
  const backend::Exec e = exec_of(ctx);
  const rules::ConvGeometry g = geometry_of(ctx.input_shape());
  const std::int64_t nb = chunk_samples(x.rows, ctx.input_shape());
  const float* w = ctx.parameter("weight").data;
  float* dw = ctx.gradient("weight").data;
  if (bias_) {
    auto* scratch =
        reinterpret_cast<double*>(ctx.workspace() + lowering_floats(x.rows, ctx.input_shape()));
    backend::channel_sum(e, dy.data, dy.rows, g.co, g.p(), ctx.gradient("bias").data, scratch);
  }
  if (e.device.is_cpu()) {
    backend::conv_backward_cpu(e, g, x.data, dy.data, x.rows, w, dw, dx.data, ctx.workspace(),
                               backend::store_of(e));
    return;
  }
#if CUTRAIN_WITH_CUDA
  void* handle = cudnn_conv::handle(ctx.resources());
  const std::size_t bytes = lowering_floats(x.rows, ctx.input_shape()) * sizeof(float);
  if (handle != nullptr && cudnn_ &&
      cudnn_->backward(e, handle, g, x.rows, x.data, dy.data, w, dw, dx.data, ctx.workspace(),
                       bytes, backend::store_of(e)))
    return;
#endif
  backend::conv_backward_chunks(e, g, nb, x.data, dy.data, x.rows, w, dw, dx.data, ctx.workspace(),
                                backend::store_of(e));
}

std::string Conv2d::gpu_algorithm() const {
#if CUTRAIN_WITH_CUDA
  return cudnn_ ? cudnn_->last() : std::string();
#else
  return {};
#endif
}

}  // namespace cutrain::nn
