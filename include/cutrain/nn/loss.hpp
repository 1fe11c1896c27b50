#pragma once
// Losses: the mean loss stays on the device (read it with value(), a synchronization) and the
// gradient with respect to the model output is written in the same pass.
//
//   SoftmaxCrossEntropy(label_smoothing, class_weights)
//                                         torch.nn.CrossEntropyLoss(weight, label_smoothing),
//                                         integer class targets, fused with log-softmax
//                                         (formulas: kernels/nn/loss.cuh)
//   MseLoss                               torch.nn.MSELoss (mean)

#include <cstdint>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/nn/layer.hpp"

namespace cutrain::nn {

/// A loss over a batch: its mean on the device and the gradient of that mean with respect to the
/// logits.
class Loss {
 public:
  virtual ~Loss() = default;
  float value() const;  ///< the last computed mean loss (a synchronization)
  const float* device_value() const {
    return value_.as<float>();
  }  ///< the mean, on the device (no sync)
  /// What the last mean was over, on the device: the batch's total class weight D for a weighted
  /// cross-entropy; null when it is the batch's size (every other loss).
  virtual const float* device_weight() const { return nullptr; }

 protected:
  void ensure(Device device,
              std::size_t scratch_floats);  ///< allocates value_ and scratch_ when needed
  Buffer value_;                            ///< one float
  Buffer scratch_;                          ///< per-row or per-element losses
  NativeStream stream_ = nullptr;           ///< where the last compute() ran; value() waits for it
};

/// Mean softmax cross-entropy over class labels, optionally class-weighted
/// (torch.nn.CrossEntropyLoss).
class SoftmaxCrossEntropy final : public Loss {
 public:
  /// class_weights: empty, or one finite weight >= 0 per class (C of them, at least one > 0):
  /// each sample counts as its class's weight and the mean is over the batch's total weight, as
  /// CrossEntropyLoss(weight=...) (e.g. balanced_class_weights(),
  /// include/cutrain/data/dataset.hpp).
  explicit SoftmaxCrossEntropy(float label_smoothing = 0.0F, std::vector<float> class_weights = {});
  /// logits [B, C] and labels [B] on the same device; grad (nullable) [B, C]. Labels outside
  /// [0, C) make the loss NaN; check_labels() (host data) says which and throws. value_out
  /// (nullable, device memory): the mean loss there too, e.g. a per-step record. grad_seed
  /// (nullable, device memory): grad is *grad_seed times the mean's gradient - the loss scale S
  /// (Optimizer::device_loss_scale, Note [dynamic loss scale]); the value stays unscaled.
  void compute(const Matrix& logits, const std::int32_t* labels, Matrix* grad,
               NativeStream stream = nullptr, float* value_out = nullptr,
               const float* grad_seed = nullptr);
  static void check_labels(
      const std::int32_t* labels, std::int64_t n,
      std::int64_t classes);  ///< throws naming the first label outside [0, classes)
  const std::vector<float>& class_weights() const { return weights_; }  ///< as constructed
  const float* device_weight() const override {
    return weights_.empty() ? nullptr : total_.as<float>();
  }

 private:
  float eps_;
  std::vector<float> weights_;
  Buffer device_weights_;  ///< weights_ on the logits' device
  Buffer total_;           ///< the last batch's D (one float)
};

/// Mean squared error over float targets (torch.nn.MSELoss).
class MseLoss final : public Loss {
 public:
  /// output and target [B, W] on the same device: the mean of (output - target)^2 over all B x W
  /// elements; grad (nullable) [B, W] = 2 (output - target) / (B W). value_out (nullable, device
  /// memory): the mean loss there too. grad_seed: as SoftmaxCrossEntropy::compute's.
  void compute(const Matrix& output, const Matrix& target, Matrix* grad,
               NativeStream stream = nullptr, float* value_out = nullptr,
               const float* grad_seed = nullptr);
};

}  // namespace cutrain::nn
