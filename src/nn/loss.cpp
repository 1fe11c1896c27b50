#include "cutrain/nn/loss.hpp"

#include <cmath>

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
  float v = 0.0F;
  copy_bytes(&v, Device::cpu(), value_.data(), value_.device(), sizeof(v));
  return v;
}

void Loss::ensure(Device device, std::size_t scratch_floats) {
  if (value_.bytes() == 0 || value_.device() != device) value_ = Buffer(sizeof(float), device);
  if (scratch_.bytes() < scratch_floats * sizeof(float) || scratch_.device() != device)
    scratch_ = Buffer(scratch_floats * sizeof(float), device);
}

SoftmaxCrossEntropy::SoftmaxCrossEntropy(float label_smoothing) : eps_(label_smoothing) {
  CUTRAIN_CHECK(label_smoothing >= 0.0F && label_smoothing <= 1.0F,
                "SoftmaxCrossEntropy: label_smoothing = ", label_smoothing,
                " is invalid; valid: [0, 1]");
}

void SoftmaxCrossEntropy::check_labels(const std::int32_t* labels, std::int64_t n,
                                       std::int64_t classes) {
  for (std::int64_t i = 0; i < n; ++i)
    CUTRAIN_CHECK(labels[i] >= 0 && labels[i] < classes, "label ", labels[i], " at position ", i,
                  " is outside [0, ", classes, ")");
}

void SoftmaxCrossEntropy::compute(const Matrix& logits, const std::int32_t* labels, Matrix* grad,
                                  NativeStream stream, float* value_out) {
  CUTRAIN_CHECK(logits.rows > 0, "SoftmaxCrossEntropy: empty batch");
  CUTRAIN_CHECK(logits.cols > 0 && logits.cols < (1LL << 31), "SoftmaxCrossEntropy: ", logits.cols,
                " classes");
  CUTRAIN_CHECK(labels != nullptr, "SoftmaxCrossEntropy: labels are null");
  if (grad != nullptr)
    CUTRAIN_CHECK(grad->rows == logits.rows && grad->cols == logits.cols,
                  "SoftmaxCrossEntropy: gradient is [", grad->rows, ", ", grad->cols,
                  "] but the logits are [", logits.rows, ", ", logits.cols, "]");
  Guard guard(logits.device);
  ensure(logits.device, static_cast<std::size_t>(logits.rows));
  const backend::Exec e{logits.device, stream, nullptr};
  // One launch on the GPU for the batch sizes models train with (Note [loss and mean in one
  // block]).
  backend::softmax_cross_entropy_mean(e, logits.data, labels, logits.rows,
                                      static_cast<int>(logits.cols), eps_, scratch_.as<float>(),
                                      grad ? grad->data : nullptr, value_.as<float>(), value_out);
}

void MseLoss::compute(const Matrix& output, const Matrix& target, Matrix* grad, NativeStream stream,
                      float* value_out) {
  CUTRAIN_CHECK(output.rows > 0 && output.cols > 0, "MseLoss: empty batch");
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
               grad ? grad->data : nullptr);
  backend::mean(e, scratch_.as<float>(), output.size(), static_cast<double>(output.size()),
                value_.as<float>(), value_out);
}

}  // namespace cutrain::nn
