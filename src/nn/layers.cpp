// The built-in layers: shapes, validation and the calls into the backend (src/nn/backend.hpp).
#include "cutrain/nn/layers.hpp"

#include <cmath>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/init.hpp"
#include "kernels/nn/channel.cuh"
#include "src/nn/batchnorm_backend.hpp"
#include "src/nn/context.hpp"
#include "src/nn/layer_common.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn {
using detail::number;

// ---- Linear -------------------------------------------------------------------------------------
Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias)
    : in_(in_features), out_(out_features), bias_(bias) {
  CUTRAIN_CHECK(in_features > 0 && out_features > 0, "Linear(", in_features, ", ", out_features,
                "): both feature counts must be positive");
}

void Linear::declare(Declarations& d) const {
  d.parameter("weight", {out_, in_}, kDecayGroup);
  if (bias_) d.parameter("bias", {out_}, kNoDecayGroup);
}

std::int64_t Linear::output_features(std::int64_t input_features) const {
  CUTRAIN_CHECK(input_features == in_, "Linear(", in_, ", ", out_, ") expects ", in_,
                " input features but the previous layer gives ", input_features);
  return out_;
}

Shape Linear::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(input.size() == 1, "Linear(", in_, ", ", out_, ") takes flat rows but its input ",
                "has shape ", shape_str(input), ": add Flatten() before it");
  return {output_features(input[0])};
}

void Linear::initialize(LayerContext& ctx, std::uint64_t seed) {
  detail::initialize_weight_and_bias(ctx, init_.value_or(init::Scheme::kaiming_uniform()), bias_,
                                     seed);
}

// y [B, out] = x [B, in] W^T (+ b)
void Linear::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const backend::Exec e = exec_of(ctx);
  const float* w = ctx.parameter("weight").data;
  if (bias_)  // one cuBLASLt call on the GPU: Note [bias in the GEMM epilogue]
    backend::gemm_bias(e, false, true, x.rows, out_, in_, x.data, in_, w, in_, y.data, out_,
                       ctx.parameter("bias").data);
  else
    backend::gemm(e, false, true, x.rows, out_, in_, 1.0F, x.data, in_, w, in_, 0.0F, y.data, out_);
}

bool Linear::forward_relu(LayerContext& ctx, const Matrix& x, Matrix& pre, Matrix& y) {
  CUTRAIN_CHECK(bias_, "Linear::forward_relu needs a bias (the fused epilogue adds it)");
  return backend::gemm_bias_relu(exec_of(ctx), false, true, x.rows, out_, in_, x.data, in_,
                                 ctx.parameter("weight").data, in_, pre.data, y.data, out_,
                                 ctx.parameter("bias").data);
}

// dx = dy W;  dW = dy^T x;  db = sum over the batch of dy
void Linear::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                      Matrix& dx) {
  const backend::Exec e = exec_of(ctx);
  if (dx.data != nullptr)
    backend::gemm(e, false, false, dy.rows, in_, out_, 1.0F, dy.data, out_,
                  ctx.parameter("weight").data, in_, 0.0F, dx.data, in_);
  backend::gemm(e, true, false, out_, in_, dy.rows, 1.0F, dy.data, out_, x.data, in_, 0.0F,
                ctx.gradient("weight").data, in_);
  if (bias_) backend::column_sum(e, dy.data, dy.rows, out_, ctx.gradient("bias").data);
}

// ---- Activations --------------------------------------------------------------------------------
namespace {
rules::Activation rule_of(Activation::Kind k) {
  switch (k) {
    case Activation::Kind::kRelu:
      return rules::Activation::kRelu;
    case Activation::Kind::kLeakyRelu:
      return rules::Activation::kLeakyRelu;
    case Activation::Kind::kTanh:
      return rules::Activation::kTanh;
    case Activation::Kind::kSigmoid:
      return rules::Activation::kSigmoid;
    case Activation::Kind::kGelu:
      return rules::Activation::kGelu;
    case Activation::Kind::kSilu:
      return rules::Activation::kSilu;
    case Activation::Kind::kRelu6:
      return rules::Activation::kRelu6;
    case Activation::Kind::kHardswish:
      return rules::Activation::kHardswish;
    case Activation::Kind::kElu:
      return rules::Activation::kElu;
  }
  return rules::Activation::kRelu;
}
}  // namespace

Activation::Activation(Kind kind, std::optional<float> parameter)
    : kind_(kind), slope_(parameter.value_or(kind == Kind::kElu ? 1.0F : 0.01F)) {
  CUTRAIN_CHECK(std::isfinite(slope_),
                kind == Kind::kElu ? "ELU: alpha = " : "LeakyReLU: negative_slope = ", slope_,
                " must be finite");
}

Activation Activation::parse(std::string_view name) {
  if (name == "relu") return Activation(Kind::kRelu);
  if (name == "leaky_relu") return Activation(Kind::kLeakyRelu);
  if (name == "tanh") return Activation(Kind::kTanh);
  if (name == "sigmoid") return Activation(Kind::kSigmoid);
  if (name == "gelu") return Activation(Kind::kGelu);
  if (name == "silu") return Activation(Kind::kSilu);
  if (name == "relu6") return Activation(Kind::kRelu6);
  if (name == "hardswish") return Activation(Kind::kHardswish);
  if (name == "elu") return Activation(Kind::kElu);
  CUTRAIN_FAIL("unknown activation '", name,
               "': expected relu, leaky_relu, tanh, sigmoid, gelu, silu, relu6, hardswish or elu");
}

std::string Linear::torch_args() const {
  return "{\"in_features\": " + std::to_string(in_) +
         ", \"out_features\": " + std::to_string(out_) +
         ", \"bias\": " + (bias_ ? "true" : "false") + "}";
}

std::string Activation::torch_args() const {
  if (kind_ == Kind::kLeakyRelu) return "{\"negative_slope\": " + number(slope_) + "}";
  if (kind_ == Kind::kElu) return "{\"alpha\": " + number(slope_) + "}";
  return "{}";
}

std::string Activation::kind() const {
  switch (kind_) {
    case Kind::kRelu:
      return "ReLU";
    case Kind::kLeakyRelu:
      return "LeakyReLU";
    case Kind::kTanh:
      return "Tanh";
    case Kind::kSigmoid:
      return "Sigmoid";
    case Kind::kGelu:
      return "GELU";
    case Kind::kSilu:
      return "SiLU";
    case Kind::kRelu6:
      return "ReLU6";
    case Kind::kHardswish:
      return "Hardswish";
    case Kind::kElu:
      return "ELU";
  }
  return "?";
}

void Activation::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  backend::activation_forward(exec_of(ctx), rule_of(kind_), slope_, x.data, y.data, x.size());
}

void Activation::backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                          Matrix& dx) {
  if (dx.data == nullptr) return;
  // ReLU's derivative reads y in place of x: y = max(x, 0) > 0 exactly when x > 0 (NaN included:
  // both say no), so the result is the same, and the input need not exist - after a Linear whose
  // GEMM applied the ReLU it is never written (Note [Linear and ReLU in one GEMM]).
  const float* in = kind_ == Kind::kRelu ? y.data : x.data;
  backend::activation_backward(exec_of(ctx), rule_of(kind_), slope_, in, y.data, dy.data, dx.data,
                               x.size());
}

// ---- Dropout ------------------------------------------------------------------------------------
Dropout::Dropout(float p) : p_(p) {
  CUTRAIN_CHECK(p >= 0.0F && p < 1.0F, "Dropout: p = ", p, " is invalid; valid: [0, 1)");
}

std::string Dropout::torch_args() const {
  return "{\"p\": " + number(p_) + "}";
}

std::size_t Dropout::workspace_floats(std::int64_t batch, const Shape& input) const {
  return static_cast<std::size_t>(batch * numel(input));
}

void Dropout::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const backend::Exec e = exec_of(ctx);
  if (!ctx.training() || p_ == 0.0F) {
    backend::copy(e, x.data, y.data, x.size());
    return;
  }
  // Note [dropout stream]: one Philox stream per layer (seed, the layer's stream_id(): its index);
  // training forward pass k reads its numbers from offset k * S, S = the numel of R rows, R the
  // rows the model is set for (Sequential::set_training_rows: a Trainer's largest batch) - or,
  // unset, of the largest training batch seen so far. So (seed, k, S) alone fix each mask and a
  // resumed run replays them, even one whose first batch is an epoch's shorter last one (its
  // masks were drawn at a stride of its own rows, unlike the uninterrupted run's). Evaluation
  // passes do not count in k: validating between epochs leaves training's masks as they would be
  // without it. The mask is drawn and applied in one pass (Note [dropout from the counter]).
  const std::uint64_t seed = init::tensor_seed(ctx.seed(), ctx.stream_id());
  const std::uint64_t numel = x.size();
  if (!rng_started_ || rng_seed_ != seed) {
    rng_started_ = true;
    rng_seed_ = seed;
    rng_stride_ = 0;
  }
  if (numel > rng_stride_) rng_stride_ = numel;  // the first (or a larger) batch
  const std::uint64_t stride =
      ctx.training_rows() > 0
          ? static_cast<std::uint64_t>(ctx.training_rows() * cutrain::numel(ctx.input_shape()))
          : rng_stride_;
  // Note [replica rows]: on rank r of W the batch is every W-th row of the global batch, whose
  // forward k starts at k x W S; row j draws the numbers of global row j W + r.
  const Replica& replica = ctx.replica();
  const auto world = static_cast<std::uint64_t>(replica.world);
  const rules::DropoutRows rows = rules::dropout_rows(
      numel, static_cast<std::size_t>(x.rows), static_cast<std::uint64_t>(replica.rank), world);
  // Note [forward count in device memory]: k is read where the kernel runs.
  backend::dropout_forward(e, seed, ctx.device_step(), stride * world, rows, ctx.workspace(),
                           x.data, y.data, numel, p_, backend::store_of(e));
}

void Dropout::backward(LayerContext& ctx, const Matrix& /*x*/, const Matrix& /*y*/,
                       const Matrix& dy, Matrix& dx) {
  if (dx.data == nullptr) return;
  const backend::Exec e = exec_of(ctx);
  if (!ctx.training() || p_ == 0.0F) {
    backend::copy(e, dy.data, dx.data, dy.size());
  } else {
    backend::multiply(e, dy.data, ctx.workspace(), dx.data, dy.size(), backend::store_of(e));
  }
}

// ---- BatchNorm1d --------------------------------------------------------------------------------
BatchNorm1d::BatchNorm1d(std::int64_t features, float eps, float momentum, bool affine)
    : features_(features), eps_(eps), momentum_(momentum), affine_(affine) {
  detail::check_batchnorm_args("BatchNorm1d", features, eps, momentum);
}

std::string BatchNorm1d::torch_args() const {
  return detail::batchnorm_torch_args(features_, eps_, momentum_, affine_);
}

void BatchNorm1d::declare(Declarations& d) const {
  detail::declare_batchnorm(d, features_, affine_);
}

std::int64_t BatchNorm1d::output_features(std::int64_t input_features) const {
  CUTRAIN_CHECK(input_features == features_, "BatchNorm1d(", features_, ") expects ", features_,
                " input features but the previous layer gives ", input_features);
  return features_;
}

// detail::BatchNormWorkspace's layout: BatchNorm1d is BatchNorm2d's per-channel code over
// [B, F, 1] (Note [channel sums in lanes]; up to 256 rows, the same additions as a column summed
// in row order).
std::size_t BatchNorm1d::workspace_floats(std::int64_t batch, const Shape& /*input*/) const {
  return detail::BatchNormWorkspace::floats(batch, features_, 1);
}

Shape BatchNorm1d::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(input.size() == 1, "BatchNorm1d(", features_, ") normalizes flat rows but its ",
                "input has shape ", shape_str(input),
                ": use BatchNorm2d for images, or Flatten() first");
  return {output_features(input[0])};
}

void BatchNorm1d::initialize(LayerContext& ctx, std::uint64_t seed) {
  detail::initialize_batchnorm(ctx, affine_, seed);
}

void BatchNorm1d::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const backend::Exec e = exec_of(ctx);
  const float* gamma = affine_ ? ctx.parameter("weight").data : nullptr;
  const float* beta = affine_ ? ctx.parameter("bias").data : nullptr;
  float* rm = ctx.buffer("running_mean").data;
  float* rv = ctx.buffer("running_var").data;
  if (ctx.training()) {
    CUTRAIN_CHECK(x.rows > 1,
                  "BatchNorm1d in training needs more than 1 sample per batch "
                  "(got ",
                  x.rows, "); use a larger batch or eval()");
    const detail::BatchNormWorkspace w(ctx.workspace(), features_);
    backend::batchnorm_train(e, x.data, y.data, x.rows, features_, 1, gamma, beta, eps_, momentum_,
                             rm, rv, w.mean, w.invstd, false, w.scratch, detail::batch_sync(ctx, w),
                             backend::store_of(e));
  } else {
    backend::batchnorm_eval(e, x.data, y.data, x.rows, features_, 1, gamma, beta, eps_, rm, rv,
                            false, backend::store_of(e));
  }
}

void BatchNorm1d::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/,
                           const Matrix& dy, Matrix& dx) {
  detail::batchnorm_backward(ctx, x, nullptr, dy, dx, features_, 1, affine_, eps_);
}

}  // namespace cutrain::nn
