#pragma once
// A model as it is now - parameters, gradients, buffers (BatchNorm's running statistics), forward
// counters (Dropout's stream position) and train/eval mode - kept on the host and put back when
// the snapshot goes out of scope, an error included. The measuring tools (nn::check_gradients,
// train::find_lr) must leave a model as they found it.

#include <cstdint>
#include <vector>

#include "cutrain/nn/sequential.hpp"

namespace cutrain::nn::detail {

class ModelSnapshot {
 public:
  explicit ModelSnapshot(Sequential& m)
      : model_(m),
        params_(m.parameters().to_host()),
        grads_(m.gradients().to_host()),
        buffers_(m.buffers().to_host()),
        forwards_(m.forward_count()),
        training_forwards_(m.training_forward_count()),
        training_(m.training()) {}
  ~ModelSnapshot() {
    try {
      model_.parameters().from_host(params_);
      model_.gradients().from_host(grads_);
      model_.buffers().from_host(buffers_);
    } catch (...) {  // a device error here was already reported by the tool that failed
    }
    hold_counters();
    model_.train(training_);
  }
  ModelSnapshot(const ModelSnapshot&) = delete;
  ModelSnapshot& operator=(const ModelSnapshot&) = delete;

  const std::vector<float>& params() const { return params_; }
  // The forward counters back to the snapshot's: the next forward draws the same Dropout masks.
  void hold_counters() {
    model_.set_forward_count(forwards_);
    model_.set_training_forward_count(training_forwards_);
  }

 private:
  Sequential& model_;
  std::vector<float> params_, grads_, buffers_;
  std::uint64_t forwards_, training_forwards_;
  bool training_;
};

}  // namespace cutrain::nn::detail
