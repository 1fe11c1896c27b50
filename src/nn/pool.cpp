// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: shapes, validation and the calls into the backend
// (window rules: kernels/nn/pool.cuh).
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "src/nn/context.hpp"
#include "src/nn/conv_backend.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn {
namespace {

rules::Pool rule_of(Pool2d::Kind k) {
  switch (k) {
    case Pool2d::Kind::kMax:
      return rules::Pool::kMax;
    case Pool2d::Kind::kAvg:
      return rules::Pool::kAvg;
    case Pool2d::Kind::kAdaptiveAvg:
      return rules::Pool::kAdaptiveAvg;
  }
  return rules::Pool::kMax;
}

}  // namespace

Pool2d::Pool2d(Kind kind, Size2 kernel, std::optional<Size2> stride, Size2 padding)
    : kind_(kind), kernel_(kernel), stride_(stride.value_or(kernel)), padding_(padding) {
  const std::string k = this->kind();
  const char* what = kind == Kind::kAdaptiveAvg ? "output_size" : "kernel_size";
  CUTRAIN_CHECK(kernel_.h > 0 && kernel_.w > 0, k, ": ", what, " (", kernel_.h, ", ", kernel_.w,
                ") must be positive");
  CUTRAIN_CHECK(stride_.h > 0 && stride_.w > 0, k, ": stride (", stride_.h, ", ", stride_.w,
                ") must be positive");
  // PyTorch's rule: a window must hold at least one element of the input.
  CUTRAIN_CHECK(padding_.h >= 0 && padding_.w >= 0 && 2 * padding_.h <= kernel_.h &&
                    2 * padding_.w <= kernel_.w,
                k, ": padding (", padding_.h, ", ", padding_.w,
                ") must be >= 0 and at most half the kernel_size (", kernel_.h, ", ", kernel_.w,
                ")");
}

bool Pool2d::keeps_16bit_values(bool backward) const {
  return kind_ == Kind::kMax && (!backward || (stride_.h >= kernel_.h && stride_.w >= kernel_.w));
}

std::string Pool2d::kind() const {
  switch (kind_) {
    case Kind::kMax:
      return "MaxPool2d";
    case Kind::kAvg:
      return "AvgPool2d";
    case Kind::kAdaptiveAvg:
      return "AdaptiveAvgPool2d";
  }
  return "?";
}

std::string Pool2d::torch_args() const {
  using detail::pair;
  if (kind_ == Kind::kAdaptiveAvg)
    return cutrain::detail::cat("{\"output_size\": ", pair(kernel_.h, kernel_.w), "}");
  return cutrain::detail::cat("{\"kernel_size\": ", pair(kernel_.h, kernel_.w),
                              ", \"stride\": ", pair(stride_.h, stride_.w),
                              ", \"padding\": ", pair(padding_.h, padding_.w), "}");
}

namespace {
rules::ConvGeometry pool_geometry(Pool2d::Kind kind, const Shape& in, Size2 k, Size2 s, Size2 p) {
  if (kind != Pool2d::Kind::kAdaptiveAvg)
    return rules::conv_geometry(in[0], in[1], in[2], in[0], k.h, k.w, s.h, s.w, p.h, p.w, 1, 1);
  rules::ConvGeometry g;  // adaptive: the windows follow from the output size alone
  g.c = g.co = in[0];
  g.h = in[1];
  g.w = in[2];
  g.ho = k.h;
  g.wo = k.w;
  return g;
}
}  // namespace

Shape Pool2d::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(input.size() == 3, kind(), " takes images [C, H, W] but its input has shape ",
                shape_str(input));
  const rules::ConvGeometry g = pool_geometry(kind_, input, kernel_, stride_, padding_);
  CUTRAIN_CHECK(g.ho > 0 && g.wo > 0, kind(), ": the kernel_size (", kernel_.h, ", ", kernel_.w,
                ") is larger than the padded input (", input[1] + 2 * padding_.h, ", ",
                input[2] + 2 * padding_.w, ") of shape ", shape_str(input));
  return {g.c, g.ho, g.wo};
}

std::size_t Pool2d::workspace_floats(std::int64_t batch, const Shape& input) const {
  if (kind_ != Kind::kMax) return 0;
  // The kept positions, one int32 per output element (as many bytes as a float).
  const rules::ConvGeometry g = pool_geometry(kind_, input, kernel_, stride_, padding_);
  return static_cast<std::size_t>(batch * g.c * g.p());
}

void Pool2d::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const rules::ConvGeometry g = pool_geometry(kind_, ctx.input_shape(), kernel_, stride_, padding_);
  auto* index = reinterpret_cast<std::int32_t*>(ctx.workspace());
  backend::pool_forward(exec_of(ctx), rule_of(kind_), g, x.rows, x.data, y.data, index);
}

void Pool2d::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                      Matrix& dx) {
  if (dx.data == nullptr) return;
  const rules::ConvGeometry g = pool_geometry(kind_, ctx.input_shape(), kernel_, stride_, padding_);
  const auto* index = reinterpret_cast<const std::int32_t*>(ctx.workspace());
  backend::pool_backward(exec_of(ctx), rule_of(kind_), g, x.rows, dy.data, index, dx.data);
}

}  // namespace cutrain::nn
