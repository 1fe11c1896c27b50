#pragma once
// What several layers share: BatchNorm1d's and BatchNorm2d's argument checks, torch arguments,
// tensors and initial values (their math is shared as rules: kernels/nn/batchnorm.cuh), and the
// weight-and-bias initialization of Linear and Conv2d - each written once.

#include <cmath>
#include <cstdint>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/init.hpp"
#include "cutrain/nn/layer.hpp"
#include "kernels/nn/batch_sync.hpp"
#include "kernels/nn/channel.cuh"
#include "src/nn/context.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn::detail {

inline void check_batchnorm_args(const char* kind, std::int64_t features, float eps,
                                 float momentum) {
  CUTRAIN_CHECK(features > 0, kind, ": features = ", features, " must be positive");
  CUTRAIN_CHECK(std::isfinite(eps) && eps > 0, kind, ": eps = ", eps, " must be > 0");
  CUTRAIN_CHECK(momentum >= 0 && momentum <= 1, kind, ": momentum = ", momentum,
                " is invalid; valid: [0, 1]");
}

inline std::string batchnorm_torch_args(std::int64_t features, float eps, float momentum,
                                        bool affine) {
  return cutrain::detail::cat("{\"num_features\": ", features, ", \"eps\": ", number(eps),
                              ", \"momentum\": ", number(momentum),
                              ", \"affine\": ", affine ? "true" : "false", "}");
}

// weight and bias (the affine scale and shift, no weight decay), running_mean, running_var.
inline void declare_batchnorm(Declarations& d, std::int64_t features, bool affine) {
  if (affine) {
    d.parameter("weight", {features}, kNoDecayGroup);
    d.parameter("bias", {features}, kNoDecayGroup);
  }
  d.buffer("running_mean", {features});
  d.buffer("running_var", {features});
}

// Scale 1, shift 0, running mean 0, running variance 1 (PyTorch's reset_parameters).
inline void initialize_batchnorm(LayerContext& ctx, bool affine, std::uint64_t seed) {
  Arena& p = *ctx.resources().parameters;
  Arena& b = *ctx.resources().buffers;
  if (affine) {
    init::initialize(p, ctx.tensor_name("weight"), init::Scheme::constant(1.0), seed, ctx.stream());
    init::initialize(p, ctx.tensor_name("bias"), init::Scheme::zeros(), seed, ctx.stream());
  }
  init::initialize(b, ctx.tensor_name("running_mean"), init::Scheme::zeros(), seed, ctx.stream());
  init::initialize(b, ctx.tensor_name("running_var"), init::Scheme::constant(1.0), seed,
                   ctx.stream());
}

// BatchNorm1d's and BatchNorm2d's workspace: the batch's mean and 1/std (2 C floats: the doubles
// after them stay 8-byte aligned), the ranks' sums (Note [synchronized batch statistics],
// kernels/nn/batch_sync.hpp), then the GPU reductions' scratch (Note [channel sums in lanes]).
struct BatchNormWorkspace {
  static std::size_t floats(std::int64_t batch, std::int64_t channels, std::int64_t plane) {
    return static_cast<std::size_t>(2 * channels) +
           2 * (kernels::BatchSync::doubles(channels) +
                static_cast<std::size_t>(rules::channel_scratch_doubles(batch, channels, plane)));
  }
  BatchNormWorkspace(float* ws, std::int64_t channels)
      : mean(ws),
        invstd(ws + channels),
        totals(reinterpret_cast<double*>(ws + 2 * channels)),
        scratch(totals + kernels::BatchSync::doubles(channels)) {}
  float* mean;
  float* invstd;
  double* totals;
  double* scratch;
};

// The ranks' sum a training BatchNorm runs its statistics through, if the model has one
// (Sequential::set_batch_statistics_sum).
inline kernels::BatchSync batch_sync(LayerContext& ctx, const BatchNormWorkspace& w) {
  const auto& sum = ctx.resources().batch_sum;
  return {sum ? &sum : nullptr, w.totals};
}

// BatchNorm1d's and 2d's backward (src/nn/batchnorm2d.cpp). After a training forward it goes
// through the batch statistics the forward saved; after an eval one through the running
// statistics as constants, as PyTorch's backward of an eval-mode BatchNorm (frozen statistics:
// fine-tuning, input gradients, the full-batch optimizers' eval-mode passes) - unsynchronized,
// for eval uses no batch statistics. relu_y: a fused ReLU's output (or null).
void batchnorm_backward(LayerContext& ctx, const Matrix& x, const float* relu_y, const Matrix& dy,
                        Matrix& dx, std::int64_t features, std::int64_t plane, bool affine,
                        float eps);

// A Linear's or Conv2d's weight by `scheme` and its bias (if any) zero.
inline void initialize_weight_and_bias(LayerContext& ctx, const init::Scheme& scheme, bool bias,
                                       std::uint64_t seed) {
  Arena& p = *ctx.resources().parameters;
  init::initialize(p, ctx.tensor_name("weight"), scheme, seed, ctx.stream());
  if (bias) init::initialize(p, ctx.tensor_name("bias"), init::Scheme::zeros(), seed, ctx.stream());
}

}  // namespace cutrain::nn::detail
