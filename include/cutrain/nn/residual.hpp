#pragma once
// Residual: y = x + body(x), the identity shortcut of a ResNet block (He et al. 2016; the
// residuals of the DAWNBench ResNet-9 and torchvision's BasicBlock without its downsample).
//
//   Residual(body...)   body: layers applied in order, mapping a sample's shape to the same shape
//                       (refused at build otherwise, naming the layer and both shapes).
//
// Its tensors follow the PyTorch module tools/cutrain_torch.py defines (torch has no residual
// class): cutrain_torch.Residual(*modules) holds them as `body`, a torch.nn.Sequential, so a
// Residual at position i names its body's layer j's weight "layers.{i}.body.{j}.weight".
// Default initialization inside the body follows Sequential's rule (the activation that
// follows a Linear or Conv2d within the body); the body's layers run one by one on both backends
// (no Linear + ReLU fusion inside).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/nn/layer.hpp"
#include "cutrain/nn/sequential.hpp"

namespace cutrain::nn {

/// x + body(x) (cutrain_torch.Residual): an identity shortcut around layers that keep the shape.
class Residual final : public Layer {
 public:
  Residual() = default;
  /// Appends a layer to the body (before the model's build); returns *this for chaining.
  Residual& add(std::unique_ptr<Layer> layer);
  /// Appends a layer of type L made from `args`: block.emplace<Conv2d>(64, 64, 3, 1, 1).
  template <class L, class... Args>
  Residual& emplace(Args&&... args) {
    return add(std::make_unique<L>(std::forward<Args>(args)...));
  }

  std::string kind() const override { return "Residual"; }
  /// {"body": [{"type": ..., "args": ...}, ...]}: the body's modules (Note [architecture in
  /// exports]).
  std::string torch_args() const override;
  /// The body's tensors, each under "body.{j}.".
  void declare(Declarations& d) const override;
  /// The input shape, after checking that the body maps it to itself; remembers the body's shapes.
  Shape output_shape(const Shape& input) const override;
  /// Every body layer's output and workspace, and two gradient buffers for backward.
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  bool reads_device_step() const override;  ///< whether a body layer does (Dropout)
  void initialize(LayerContext& ctx, std::uint64_t seed) override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  /// dx = dy + the body's input gradient; the body's parameter gradients overwritten.
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

  std::size_t size() const { return body_.size(); }                 ///< layers in the body
  Layer& layer(std::size_t j) { return *body_.at(j); }              ///< body layer j (0-based)
  const Layer& layer(std::size_t j) const { return *body_.at(j); }  ///< body layer j
  /// One sample's input shape of body layer j (j == size(): the body's output), after build.
  const Shape& shape(std::size_t j) const { return shapes_.at(j); }

 private:
  // Where body layer j's output, its workspace and the two gradient buffers lie in the workspace.
  struct Plan {
    std::vector<std::size_t> output, workspace;
    std::size_t grad_a = 0, grad_b = 0, total = 0;
  };
  // The plan for `batch` rows, kept for the last batch size asked (every full batch of an
  // epoch: forward and backward then read it instead of rebuilding it).
  const Plan& plan(std::int64_t batch) const;
  std::vector<std::unique_ptr<Layer>> body_;
  mutable Plan plan_;
  mutable std::int64_t plan_batch_ = -1;
  // shapes_[j]: body layer j's input shape; back(): the body's output. Set by output_shape,
  // which Sequential::build calls once before anything else.
  mutable std::vector<Shape> shapes_;
};

/// Calls f(layer, its input shape, its position) for every layer of a built `model`, a
/// Residual's body after the Residual itself, positions written "3" and "3.body.1".
void for_each_layer(Sequential& model,
                    const std::function<void(const Layer&, const Shape&, const std::string&)>& f);

}  // namespace cutrain::nn
