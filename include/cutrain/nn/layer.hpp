#pragma once
// The Layer interface: explicit forward and backward over row-major [batch, features] matrices
// (each row one sample, of a shape the layer knows: Note [layer shapes]),
// parameters and gradients living in the model's arenas (no general autograd).
//
// A custom layer declares its tensors (declare), says its output width (output_features), and
// implements forward and backward against a LayerContext, which hands out views of its own
// parameters, gradients, buffers and workspace, the device, the stream and library handles.
// backward() overwrites (does not accumulate) the layer's parameter gradients.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::nn {

// Note [layer shapes]: activations are row-major [batch, features] matrices; a layer also knows
/// the shape of one sample's features, its input shape: {F} for flat rows, {C, H, W} for images
/// (NCHW: a row holds channel 0's H x W plane, then channel 1's, ...), so the same matrix is an
/// image batch to a Conv2d and flat rows to a Linear. Sequential computes every layer's input
/// shape at build (Layer::output_shape) and hands it to the layer through LayerContext.
///
/// A row-major matrix view [rows, cols] on a device.
struct Matrix {
  float* data = nullptr;  ///< rows x cols floats on `device`, row-major
  std::int64_t rows = 0;  ///< the batch
  std::int64_t cols = 0;  ///< one sample's values (numel of its shape)
  Device device;          ///< where `data` lives
  std::size_t size() const { return static_cast<std::size_t>(rows * cols); }  ///< rows x cols
};

// Note [replica rows]: under data-parallel training W ranks each train on B rows, taken from the
/// epoch's order as torch's DistributedSampler deals them (data::LoaderOptions): rank r's row j
/// is row j W + r of the global batch - the batch one process with batch W B trains on at the
/// same step. The random streams drawn per row (Dropout's masks, the augmentation's shifts and
/// flips) are numbered by that global row, so W ranks draw exactly what the one process draws, a
/// data-parallel run is the one-process run with the combined batch (up to the all-reduce's
/// order of addition; BatchNorm's statistics stay per rank, as in DDP), and one process (W = 1,
/// r = 0) draws as it always did.
struct Replica {
  std::int64_t rank = 0;   ///< r, in [0, world)
  std::int64_t world = 1;  ///< W: the ranks that share each global batch
};

/// Parameter groups in the model's arena (optimizers take per-group weight decay and lr).
inline constexpr int kDecayGroup = 0;    ///< weights
inline constexpr int kNoDecayGroup = 1;  ///< biases and normalization scales/shifts

/// What a layer declares: trainable parameters (in the parameter arena, with a twin in the
/// gradient arena) and buffers (non-trainable state such as running statistics).
class Declarations {
 public:
  /// A trainable tensor, "layers.{i}.<name>" in the arenas, in parameter group `group`.
  void parameter(std::string name, Shape shape, int group = kDecayGroup);
  void buffer(std::string name, Shape shape);  ///< non-trainable state, "layers.{i}.<name>"
  /// One declared tensor: name, shape and parameter group.
  struct Entry {
    std::string name;  ///< the layer's own name ("weight")
    Shape shape;       ///< the tensor's shape
    int group;         ///< parameter group (buffers: unused)
  };
  const std::vector<Entry>& parameters() const { return parameters_; }  ///< in declaration order
  const std::vector<Entry>& buffers() const { return buffers_; }        ///< in declaration order

 private:
  std::vector<Entry> parameters_, buffers_;
};

class LayerContext;

/// A layer of a Sequential: declares its tensors, computes its output shape, and runs forward and
/// backward on either backend.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string kind() const = 0;  ///< "Linear", "ReLU", ... (PyTorch's class names)
  /// The keyword arguments that build the same module in PyTorch, torch.nn.<kind()>(**args), as
  /// a JSON object ("{\"in_features\": 784, ...}"): export_torch writes them so that Python can
  /// rebuild the model (Note [architecture in exports]).
  virtual std::string torch_args() const { return "{}"; }
  /// Declares the layer's parameters and buffers (none by default).
  virtual void declare(Declarations& /*d*/) const {}
  /// The output width for an input width; throws cutrain::Error if the input does not fit.
  virtual std::int64_t output_features(std::int64_t input_features) const { return input_features; }
  /// The output shape of one sample for an input shape (Note [layer shapes]); throws
  /// cutrain::Error, naming the shapes, if the input does not fit. The default keeps the shape when
  /// output_features keeps the width (element-wise layers) and is flat otherwise.
  virtual Shape output_shape(const Shape& input) const;
  /// Floats of per-batch workspace this layer needs (masks, saved statistics) for `batch` samples
  /// of shape `input`.
  virtual std::size_t workspace_floats(std::int64_t /*batch*/, const Shape& /*input*/) const {
    return 0;
  }
  /// Whether forward() reads LayerContext::device_step() (Note [forward count in device memory]):
  /// the model then keeps that count on its device. Dropout does.
  virtual bool reads_device_step() const { return false; }
  /// Note [16-bit values in fp32 storage] (cutrain/precision.hpp): whether, given 16-bit values,
  /// this layer always writes 16-bit values - its output (backward false) or its input gradient
  /// (backward true) - so that a bf16 / fp16 model skips rounding them (a pass over the
  /// activation fewer; rounding a 16-bit value changes nothing, so the bits are the same). Only
  /// an answer true of every input may be given: ReLU (max(x, 0); dy or 0), max pooling (a
  /// maximum; backward one dy per input where windows do not overlap), Flatten and Unflatten
  /// (copies) keep 16-bit values; BatchNorm1d / 2d, Dropout and Conv2d round what they store in a
  /// 16-bit model (Note [16-bit stores], kernels/common/half.cuh). With BatchNorm2d and the ReLU
  /// after it fused, the BatchNorm's answer is the pair's. Default false: the model rounds.
  virtual bool keeps_16bit_values(bool /*backward*/) const { return false; }
  /// Fills parameters and buffers before training (the default initialization).
  virtual void initialize(LayerContext& /*ctx*/, std::uint64_t /*seed*/) {}
  /// y = the layer applied to x (x [B, in], y [B, out], both on ctx.device()).
  virtual void forward(LayerContext& ctx, const Matrix& x, Matrix& y) = 0;
  /// dy: gradient w.r.t. y. Writes dx (skipped when dx.data is null: the first layer) and the
  /// gradients of the layer's parameters.
  virtual void backward(LayerContext& ctx, const Matrix& x, const Matrix& y, const Matrix& dy,
                        Matrix& dx) = 0;
};

/// Handed to a layer by Sequential: views of the layer's own tensors and the execution context.
class LayerContext {
 public:
  struct Resources;  ///< device, stream, handles, arenas (src/nn/context.hpp)
  LayerContext(Resources& r, std::size_t layer_index, bool training, std::uint64_t step);

  TensorView parameter(const std::string& name);  ///< "weight" -> layers.{i}.weight
  TensorView gradient(const std::string& name);   ///< the parameter's gradient twin
  TensorView buffer(const std::string& name);     ///< "running_mean" -> layers.{i}.running_mean
  float* workspace();           ///< workspace_floats() floats of scratch, valid during the call
  Device device() const;        ///< the model's device
  NativeStream stream() const;  ///< where to issue the layer's work
  bool training() const { return training_; }  ///< the model's mode
  /// Training forward passes before this one (dropout's stream position); evaluation passes do
  /// not count, so evaluating never changes what training draws next.
  std::uint64_t step() const { return step_; }
  /// step() in the model's device memory, for a layer whose reads_device_step() is true: a value
  /// a kernel reads when it runs, so that a forward captured in a CUDA graph draws anew on every
  /// replay (Note [forward count in device memory], src/nn/sequential.cpp). Valid in forward().
  const std::uint64_t* device_step() const;
  /// The layer's position in the Sequential (inside a Residual: the Residual's position).
  std::size_t index() const { return index_; }
  /// The full name of one of the layer's tensors in the model's arenas: "layers.{i}.<name>", or
  /// "layers.{i}.body.{j}.<name>" for layer j of the Residual at i (torch's state_dict names).
  std::string tensor_name(const std::string& name) const;
  /// What names the layer's random streams (dropout's masks): its index at the top level; for a
  /// nested layer a hash of its path, with the top bit set so it cannot meet a top-level index.
  std::uint64_t stream_id() const { return stream_; }
  /// The context of layer `position` inside this one (a composite layer's body: Residual): its
  /// tensors are this layer's "<scope>.<position>.<name>", its workspace and shapes the given
  /// ones (they must outlive the returned context); device, stream, mode and step are shared.
  LayerContext nested(const std::string& scope, std::size_t position, float* workspace,
                      const Shape& input, const Shape& output) const;
  /// One sample's input and output shapes (Note [layer shapes]).
  const Shape& input_shape() const;
  const Shape& output_shape() const;  ///< what output_shape(input_shape()) returned at build
  std::uint64_t seed() const;         ///< the model's seed
  /// Which rows of the global batch the model's batches are (Note [replica rows]).
  const Replica& replica() const;
  /// The rows of the largest training batch the model is set for (Sequential::set_training_rows:
  /// Trainer::fit and find_lr set their loader's), 0 when unset: how far a layer's random
  /// streams advance per training forward, whatever the batch at hand (Note [dropout stream]).
  std::int64_t training_rows() const;
  Resources& resources() { return r_; }  ///< library internals (src/nn/context.hpp)

 private:
  Resources& r_;
  std::size_t index_;
  bool training_;
  std::uint64_t step_;
  std::uint64_t stream_;
  // A nested layer's (nested()): its names' prefix ("layers.{i}.body.{j}."), workspace and
  // shapes; empty / null at the top level, where Resources holds them by index.
  std::string prefix_;
  float* workspace_ = nullptr;
  const Shape* input_ = nullptr;
  const Shape* output_ = nullptr;
};

}  // namespace cutrain::nn
