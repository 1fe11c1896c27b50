#pragma once
// Residual: y = x + body(x), the identity shortcut of a ResNet block (He et al. 2016; the
// residuals of the DAWNBench ResNet-9), or y = shortcut(x) + body(x) with a projection shortcut
// (torchvision's BasicBlock with its downsample: Conv2d 1x1 with the body's stride + BatchNorm2d).
//
//   Residual(body...)   body: layers applied in order, mapping a sample's shape to the same shape
//                       (refused at build otherwise, naming the layer and both shapes).
//   add_shortcut(...)   shortcut layers: then body and shortcut must map the input to one shape,
//                       which may differ from the input's (the block that downsamples).
//
// Its tensors follow the PyTorch module tools/cutrain_torch.py defines (torch has no residual
// class): cutrain_torch.Residual(*modules) holds them as `body`, a torch.nn.Sequential, so a
// Residual at position i names its body's layer j's weight "layers.{i}.body.{j}.weight" and its
// shortcut's "layers.{i}.shortcut.{j}.weight" (cutrain_torch.Residual(..., shortcut=[...])).
// Default initialization inside the body follows Sequential's rule (the activation that
// follows a Linear or Conv2d within the body); the body's layers run one by one on both backends
// (no Linear + ReLU fusion inside).

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/nn/layer.hpp"
#include "cutrain/nn/sequential.hpp"

namespace cutrain::nn {

/// x + body(x) (cutrain_torch.Residual): an identity shortcut around layers that keep the shape;
/// shortcut(x) + body(x) with a projection shortcut.
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

  /// Appends a layer to the shortcut, which is the identity while it has none: a projection,
  /// block.add_shortcut(std::make_unique<Conv2d>(64, 128, 1, 2, 0, 1, false)).
  Residual& add_shortcut(std::unique_ptr<Layer> layer);
  /// Appends a layer of type L made from `args` to the shortcut.
  template <class L, class... Args>
  Residual& emplace_shortcut(Args&&... args) {
    return add_shortcut(std::make_unique<L>(std::forward<Args>(args)...));
  }

  std::string kind() const override { return "Residual"; }
  /// {"body": [{"type": ..., "args": ...}, ...]}, and "shortcut": [...] when it has layers: the
  /// modules (Note [architecture in exports]).
  std::string torch_args() const override;
  /// The body's tensors, each under "body.{j}.", and the shortcut's under "shortcut.{j}.".
  void declare(Declarations& d) const override;
  /// The body's output shape, after checking that it is the input's (identity shortcut) or the
  /// shortcut's output shape; remembers both branches' shapes.
  Shape output_shape(const Shape& input) const override;
  /// Every branch layer's output and workspace, and the gradient buffers for backward.
  std::size_t workspace_floats(std::int64_t batch, const Shape& input) const override;
  bool reads_device_step() const override;  ///< whether a branch layer does (Dropout)
  void initialize(LayerContext& ctx, std::uint64_t seed) override;
  void forward(LayerContext& ctx, const Matrix& x, Matrix& y) override;
  /// dx = the body's input gradient + dy (identity) or the shortcut's input gradient; the
  /// branches' parameter gradients overwritten.
  void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                Matrix& dx) override;

  std::size_t size() const { return body_.layers.size(); }     ///< layers in the body
  Layer& layer(std::size_t j) { return *body_.layers.at(j); }  ///< body layer j (0-based)
  const Layer& layer(std::size_t j) const { return *body_.layers.at(j); }  ///< body layer j
  /// One sample's input shape of body layer j (j == size(): the body's output), after build.
  const Shape& shape(std::size_t j) const { return body_.shapes.at(j); }
  /// Layers in the shortcut (0: the identity).
  std::size_t shortcut_size() const { return shortcut_.layers.size(); }
  Layer& shortcut_layer(std::size_t j) { return *shortcut_.layers.at(j); }  ///< shortcut layer j
  const Layer& shortcut_layer(std::size_t j) const {
    return *shortcut_.layers.at(j);
  }  ///< shortcut layer j
  /// One sample's input shape of shortcut layer j (j == shortcut_size(): its output).
  const Shape& shortcut_shape(std::size_t j) const { return shortcut_.shapes.at(j); }

 private:
  // The layers of one branch and, after build, their input shapes (shapes[j]: layer j's input;
  // back(): the branch's output) - set by output_shape, which Sequential::build calls first.
  struct Branch {
    const char* scope;  // "body" / "shortcut": the tensors' and positions' infix
    std::vector<std::unique_ptr<Layer>> layers;
    mutable std::vector<Shape> shapes;
  };
  // Where each branch layer's output and workspace lie in the workspace, and the gradient
  // buffers: two for the ping-pong inside a branch, one for the shortcut's input gradient.
  struct Plan {
    std::array<std::vector<std::size_t>, 2> output, workspace;  // [0]: body, [1]: shortcut
    std::size_t grad_a = 0, grad_b = 0, grad_x = 0, total = 0;
  };
  // The plan for `batch` rows, kept for the last batch size asked (every full batch of an
  // epoch: forward and backward then read it instead of rebuilding it).
  const Plan& plan(std::int64_t batch) const;
  // Runs branch b (0: body, 1: shortcut) forward from x; returns its output (in the workspace).
  Matrix forward_branch(LayerContext& ctx, int b, const Matrix& x);
  // Runs branch b backward from dy, writing its input gradient to dx (null: none wanted).
  void backward_branch(LayerContext& ctx, int b, const Matrix& x, const Matrix& dy, float* dx);
  Branch& branch(int b) { return b == 0 ? body_ : shortcut_; }
  Branch body_{"body", {}, {}};
  Branch shortcut_{"shortcut", {}, {}};
  mutable Plan plan_;
  mutable std::int64_t plan_batch_ = -1;
};

/// Calls f(layer, its input shape, its position) for every layer of a built `model`, a
/// Residual's body and shortcut after the Residual itself, positions written "3", "3.body.1"
/// and "3.shortcut.0".
void for_each_layer(Sequential& model,
                    const std::function<void(const Layer&, const Shape&, const std::string&)>& f);

}  // namespace cutrain::nn
