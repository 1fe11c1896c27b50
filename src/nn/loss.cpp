#include "cutrain/nn/loss.hpp"

#include <cmath>
#include <utility>

#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"
#include "src/nn/backend.hpp"

namespace cutrain::nn {
namespace {

// Sets the device for the CUDA launches of one loss computation (no-op on the CPU).
struct Guard {
  explicit Guard(Device d) {
    if (d.is_cuda()) guard.emplace(d.ordinal());
  }
  std::optional<detail::cuda::DeviceGuard> guard;
};

}  // namespace

float Loss::value() const {
  CUTRAIN_CHECK(value_.bytes() > 0, "Loss::value() before any compute()");
  // Note [read after the writing stream] (src/optim/optimizer.cpp): wait for the stream the
  // loss was computed on; a plain copy would not wait for a non-blocking one.
  if (value_.device().is_cuda() && stream_ != nullptr)
    cutrain::detail::cuda::stream_synchronize(stream_, value_.device().ordinal());
  float v = 0.0F;
  copy_bytes(&v, Device::cpu(), value_.data(), value_.device(), sizeof(v));
  return v;
}

void Loss::ensure(Device device, std::size_t scratch_floats) {
  if (value_.bytes() == 0 || value_.device() != device) value_ = Buffer(sizeof(float), device);
  if (scratch_.bytes() < scratch_floats * sizeof(float) || scratch_.device() != device)
    scratch_ = Buffer(scratch_floats * sizeof(float), device);
}

SoftmaxCrossEntropy::SoftmaxCrossEntropy(float label_smoothing, std::vector<float> class_weights)
    : eps_(label_smoothing), weights_(std::move(class_weights)) {
  CUTRAIN_CHECK(label_smoothing >= 0.0F && label_smoothing <= 1.0F,
                "SoftmaxCrossEntropy: label_smoothing = ", label_smoothing,
                " is invalid; valid: [0, 1]");
  bool any_positive = weights_.empty();
  for (std::size_t c = 0; c < weights_.size(); ++c) {
    CUTRAIN_CHECK(std::isfinite(weights_[c]) && weights_[c] >= 0.0F,
                  "SoftmaxCrossEntropy: the weight of class ", c, " is ", weights_[c],
                  "; class weights must be finite and >= 0");
    // A batch's total weight (a float sum over its rows) must stay finite: 1e38 per row made
    // it inf and every loss 0 or NaN. Weights are relative; 1e20 leaves room for 2^60 rows.
    CUTRAIN_CHECK(
        weights_[c] <= 1e20F, "SoftmaxCrossEntropy: the weight of class ", c, " is ", weights_[c],
        "; class weights must be at most 1e20 (only their ratios matter: ", "scale them down)");
    any_positive = any_positive || weights_[c] > 0.0F;
  }
  CUTRAIN_CHECK(any_positive,
                "SoftmaxCrossEntropy: every class weight is 0, so no sample would count; give at "
                "least one class a positive weight");
}

void SoftmaxCrossEntropy::check_labels(const std::int32_t* labels, std::int64_t n,
                                       std::int64_t classes) {
  for (std::int64_t i = 0; i < n; ++i)
    CUTRAIN_CHECK(labels[i] >= 0 && labels[i] < classes, "label ", labels[i], " at position ", i,
                  " is outside [0, ", classes, ")");
}

void SoftmaxCrossEntropy::compute(const Matrix& logits, const std::int32_t* labels, Matrix* grad,
                                  NativeStream stream, float* value_out, const float* grad_seed) {
  CUTRAIN_CHECK(logits.rows > 0, "SoftmaxCrossEntropy: empty batch");
  stream_ = stream;
  CUTRAIN_CHECK(logits.cols > 0 && logits.cols < (1LL << 31), "SoftmaxCrossEntropy: ", logits.cols,
                " classes");
  CUTRAIN_CHECK(labels != nullptr, "SoftmaxCrossEntropy: labels are null");
  if (grad != nullptr)
    CUTRAIN_CHECK(grad->rows == logits.rows && grad->cols == logits.cols,
                  "SoftmaxCrossEntropy: gradient is [", grad->rows, ", ", grad->cols,
                  "] but the logits are [", logits.rows, ", ", logits.cols, "]");
  CUTRAIN_CHECK(weights_.empty() || static_cast<std::int64_t>(weights_.size()) == logits.cols,
                "SoftmaxCrossEntropy: ", weights_.size(), " class weights but the logits have ",
                logits.cols, " classes; give one weight per class");
  Guard guard(logits.device);
  ensure(logits.device, static_cast<std::size_t>(logits.rows));
  backend::ClassWeights cw;
  if (!weights_.empty()) {
    if (device_weights_.device() != logits.device || device_weights_.bytes() == 0) {
      device_weights_ = Buffer(weights_.size() * sizeof(float), logits.device);
      copy_bytes(device_weights_.data(), logits.device, weights_.data(), Device::cpu(),
                 device_weights_.bytes());
      total_ = Buffer(sizeof(float), logits.device);
    }
    cw = {device_weights_.as<float>(), total_.as<float>()};
  }
  const backend::Exec e{logits.device, stream, nullptr};
  // One launch on the GPU for the batch sizes models train with (Note [loss and mean in one
  // block]).
  backend::softmax_cross_entropy_mean(
      e, logits.data, labels, logits.rows, static_cast<int>(logits.cols), eps_, cw,
      scratch_.as<float>(), grad ? grad->data : nullptr, value_.as<float>(), value_out, grad_seed);
}

void MseLoss::compute(const Matrix& output, const Matrix& target, Matrix* grad, NativeStream stream,
                      float* value_out, const float* grad_seed) {
  CUTRAIN_CHECK(output.rows > 0 && output.cols > 0, "MseLoss: empty batch");
  stream_ = stream;
  CUTRAIN_CHECK(target.rows == output.rows && target.cols == output.cols, "MseLoss: target is [",
                target.rows, ", ", target.cols, "] but the output is [", output.rows, ", ",
                output.cols, "]");
  if (grad != nullptr)
    CUTRAIN_CHECK(grad->rows == output.rows && grad->cols == output.cols,
                  "MseLoss: gradient shape differs from the output's");
  Guard guard(output.device);
  ensure(output.device, output.size());
  const backend::Exec e{output.device, stream, nullptr};
  backend::mse(e, output.data, target.data, output.size(), scratch_.as<float>(),
               grad ? grad->data : nullptr, grad_seed);
  backend::mean(e, scratch_.as<float>(), output.size(), static_cast<double>(output.size()),
                value_.as<float>(), value_out);
}

}  // namespace cutrain::nn
