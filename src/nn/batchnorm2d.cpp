// BatchNorm2d: shapes, validation and the calls into the backend (formulas: kernels/nn/
// batchnorm.cuh, per-channel sums: kernels/nn/channel.cuh).
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "kernels/nn/channel.cuh"
#include "src/nn/batchnorm_backend.hpp"
#include "src/nn/context.hpp"
#include "src/nn/layer_common.hpp"

namespace cutrain::nn {

BatchNorm2d::BatchNorm2d(std::int64_t num_features, float eps, float momentum, bool affine)
    : features_(num_features), eps_(eps), momentum_(momentum), affine_(affine) {
  detail::check_batchnorm_args("BatchNorm2d", num_features, eps, momentum);
}

std::string BatchNorm2d::torch_args() const {
  return detail::batchnorm_torch_args(features_, eps_, momentum_, affine_);
}

void BatchNorm2d::declare(Declarations& d) const {
  detail::declare_batchnorm(d, features_, affine_);
}

Shape BatchNorm2d::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(input.size() == 3, "BatchNorm2d(", features_,
                ") normalizes images [C, H, W] but its input has shape ", shape_str(input),
                (input.size() == 1 ? ": use BatchNorm1d for flat rows" : ""));
  CUTRAIN_CHECK(input[0] == features_, "BatchNorm2d(", features_, ") expects ", features_,
                " channels but its input has ", input[0], " (shape ", shape_str(input), ")");
  return input;
}

// detail::BatchNormWorkspace's layout.
std::size_t BatchNorm2d::workspace_floats(std::int64_t batch, const Shape& input) const {
  const std::int64_t plane = input.size() == 3 ? input[1] * input[2] : 1;
  return detail::BatchNormWorkspace::floats(batch, features_, plane);
}

void BatchNorm2d::initialize(LayerContext& ctx, std::uint64_t seed) {
  detail::initialize_batchnorm(ctx, affine_, seed);
}

void BatchNorm2d::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  run_forward(ctx, x, y, false);
}

void BatchNorm2d::forward_relu(LayerContext& ctx, const Matrix& x, Matrix& relu_y) {
  run_forward(ctx, x, relu_y, true);
}

void BatchNorm2d::run_forward(LayerContext& ctx, const Matrix& x, Matrix& y, bool relu) {
  const backend::Exec e = exec_of(ctx);
  const Shape& s = ctx.input_shape();
  const std::int64_t plane = s[1] * s[2];
  const float* gamma = affine_ ? ctx.parameter("weight").data : nullptr;
  const float* beta = affine_ ? ctx.parameter("bias").data : nullptr;
  float* rm = ctx.buffer("running_mean").data;
  float* rv = ctx.buffer("running_var").data;
  if (ctx.training()) {
    CUTRAIN_CHECK(x.rows * plane > 1, "BatchNorm2d in training needs more than 1 value per ",
                  "channel (got a batch of ", x.rows, " of shape ", shape_str(s),
                  "); use a larger batch or eval()");
    const detail::BatchNormWorkspace w(ctx.workspace(), features_);
    backend::batchnorm_train(e, x.data, y.data, x.rows, features_, plane, gamma, beta, eps_,
                             momentum_, rm, rv, w.mean, w.invstd, relu, w.scratch,
                             detail::batch_sync(ctx, w), backend::store_of(e));
  } else {
    backend::batchnorm_eval(e, x.data, y.data, x.rows, features_, plane, gamma, beta, eps_, rm, rv,
                            relu, backend::store_of(e));
  }
}

void BatchNorm2d::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/,
                           const Matrix& dy, Matrix& dx) {
  run_backward(ctx, x, nullptr, dy, dx);
}

void BatchNorm2d::backward_relu(LayerContext& ctx, const Matrix& x, const Matrix& relu_y,
                                const Matrix& dy_relu, Matrix& dx) {
  run_backward(ctx, x, relu_y.data, dy_relu, dx);
}

void BatchNorm2d::run_backward(LayerContext& ctx, const Matrix& x, const float* relu_y,
                               const Matrix& dy, Matrix& dx) {
  const Shape& s = ctx.input_shape();
  detail::batchnorm_backward(ctx, x, relu_y, dy, dx, features_, s[1] * s[2], affine_, eps_);
}

namespace detail {

void batchnorm_backward(LayerContext& ctx, const Matrix& x, const float* relu_y, const Matrix& dy,
                        Matrix& dx, std::int64_t features, std::int64_t plane, bool affine,
                        float eps) {
  const BatchNormWorkspace w(ctx.workspace(), features);
  const backend::Exec e = exec_of(ctx);
  const bool frozen = !ctx.training();
  if (frozen)  // the running statistics where the training forward saves the batch's
    backend::batchnorm_frozen_stats(e, features, eps, ctx.buffer("running_mean").data,
                                    ctx.buffer("running_var").data, w.mean, w.invstd);
  backend::batchnorm_backward(
      e, x.data, relu_y, dy.data, dx.data, x.rows, features, plane,
      affine ? ctx.parameter("weight").data : nullptr, w.mean, w.invstd,
      affine ? ctx.gradient("weight").data : nullptr, affine ? ctx.gradient("bias").data : nullptr,
      w.scratch, frozen ? backend::BatchSync{} : batch_sync(ctx, w), backend::store_of(e), frozen);
}

}  // namespace detail

}  // namespace cutrain::nn
