#pragma once
// ONNX export for deployment: a trained Sequential as an ONNX model (opset 17, IR version 8)
// that ONNX Runtime, TensorRT and OpenVINO run, in eval semantics.
//
//   train::export_onnx("model.onnx", model, {.data = spec, .class_names = names});
//   # Python: onnxruntime.InferenceSession("model.onnx").run(None, {"input": raw_rows})
//
// The graph: input "input" [batch, F] float32 (batch symbolic), then - with `data` - the data
// preparation cutrain applies (missing values filled, the scale, standardization), then each
// layer: Linear -> Gemm, activations (GELU as Erf: opset 17 has no Gelu; SiLU as x * Sigmoid),
// Dropout -> Identity, BatchNorm1d/2d -> BatchNormalization (running statistics), Conv2d -> Conv,
// MaxPool2d / AvgPool2d -> MaxPool / AveragePool, AdaptiveAvgPool2d -> GlobalAveragePool (or
// AveragePool when the output divides the input), Flatten, Unflatten -> Reshape; output
// "logits" [batch, outputs], or "probabilities" with `softmax`; with test-time flips
// (OnnxOptions::augment) the model runs on the batch and its mirror images, and the logits are
// their mean. Weights are raw little-endian
// initializers. Metadata: "cutrain.modules" (the architecture), "cutrain.data" (the data spec),
// "cutrain.classes" (JSON list of class names). One-hot encoding of text columns happens before
// the graph (its input is the numeric row; the categories are in "cutrain.data").
//
// Why a hand-written protobuf writer (src/io/protobuf.hpp) and not libonnx/libprotobuf:
// docs/ARCHITECTURE.md, "ONNX export".

#include <optional>
#include <string>
#include <vector>

#include "cutrain/data/augment.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/train/data_spec.hpp"

namespace cutrain::train {

/// What export_onnx puts around the model.
struct OnnxOptions {
  std::optional<DataSpec> data;          ///< the data preparation as the graph's first nodes
  std::vector<std::string> class_names;  ///< metadata "cutrain.classes" (empty: none)
  bool softmax = false;                  ///< output probabilities (Softmax) instead of logits
  /// Test-time flips in the graph (Note [test-time flips]), so that ONNX Runtime predicts what
  /// train::predict does with the same EvalAugment: with `flip`, after the data preparation the
  /// batch is followed by its mirror images (Reshape to image lines, Slice with step -1), the
  /// model runs on both, and the logits are the two halves' mean (ReduceMean) - then Softmax.
  data::EvalAugment augment{};
};

/// Writes `model` (built, any device) as ONNX to `path`, atomically (a temporary file, fsync,
/// rename: a failed export leaves no partial file). A layer ONNX cannot express (an
/// AdaptiveAvgPool2d whose output does not divide its input) is a cutrain::Error naming it.
void export_onnx(const std::string& path, nn::Sequential& model, const OnnxOptions& options = {});

/// The same model as bytes (what export_onnx writes).
std::string onnx_model_bytes(nn::Sequential& model, const OnnxOptions& options = {});

}  // namespace cutrain::train
