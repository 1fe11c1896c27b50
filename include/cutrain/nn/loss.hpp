#pragma once
// Losses: the mean loss stays on the device (read it with value(), a synchronization) and the
// gradient with respect to the model output is written in the same pass.
//
//   SoftmaxCrossEntropy(label_smoothing)  torch.nn.CrossEntropyLoss, integer class targets,
//                                         fused with log-softmax (kernels/nn/loss.cuh)
//   MseLoss                               torch.nn.MSELoss (mean)

#include <cstdint>

#include "cutrain/buffer.hpp"
#include "cutrain/nn/layer.hpp"

namespace cutrain::nn {

class Loss {
 public:
  virtual ~Loss() = default;
  float value() const;  // the last computed mean loss (a synchronization)
  const float* device_value() const { return value_.as<float>(); }

 protected:
  void ensure(Device device, std::size_t scratch_floats);
  Buffer value_;    // one float
  Buffer scratch_;  // per-row or per-element losses
};

class SoftmaxCrossEntropy final : public Loss {
 public:
  explicit SoftmaxCrossEntropy(float label_smoothing = 0.0F);
  // logits [B, C] and labels [B] on the same device; grad (nullable) [B, C]. Labels outside
  // [0, C) make the loss NaN; check_labels() (host data) says which and throws. value_out
  // (nullable, device memory): the mean loss there too, e.g. a per-step record.
  void compute(const Matrix& logits, const std::int32_t* labels, Matrix* grad,
               NativeStream stream = nullptr, float* value_out = nullptr);
  static void check_labels(const std::int32_t* labels, std::int64_t n, std::int64_t classes);

 private:
  float eps_;
};

class MseLoss final : public Loss {
 public:
  // output and target [B, W] on the same device: the mean of (output - target)^2 over all B x W
  // elements; grad (nullable) [B, W] = 2 (output - target) / (B W). value_out (nullable, device
  // memory): the mean loss there too.
  void compute(const Matrix& output, const Matrix& target, Matrix* grad,
               NativeStream stream = nullptr, float* value_out = nullptr);
};

}  // namespace cutrain::nn
