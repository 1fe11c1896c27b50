// The pieces of include/cutrain/nn/layer.hpp a Sequential hands its layers: declarations, the
// LayerContext's views of the model's tensors (src/nn/context.hpp), the default output shape.
#include "cutrain/error.hpp"
#include "cutrain/init.hpp"
#include "cutrain/nn/layer.hpp"
#include "src/nn/context.hpp"

namespace cutrain::nn {

std::string tensor_name(std::size_t layer, const std::string& name) {
  return "layers." + std::to_string(layer) + "." + name;
}

void Declarations::parameter(std::string name, Shape shape, int group) {
  parameters_.push_back({std::move(name), std::move(shape), group});
}
void Declarations::buffer(std::string name, Shape shape) {
  buffers_.push_back({std::move(name), std::move(shape), 0});
}

LayerContext::LayerContext(Resources& r, std::size_t layer_index, bool training, std::uint64_t step)
    : r_(r), index_(layer_index), training_(training), step_(step), stream_(layer_index) {}
std::string LayerContext::tensor_name(const std::string& name) const {
  return prefix_.empty() ? nn::tensor_name(index_, name) : prefix_ + name;
}
LayerContext LayerContext::nested(const std::string& scope, std::size_t position, float* workspace,
                                  const Shape& input, const Shape& output) const {
  LayerContext c(r_, index_, training_, step_);
  c.prefix_ = tensor_name(scope + "." + std::to_string(position) + ".");
  // A stream per path: the body's positions as they always were (its Dropout's masks unchanged),
  // another scope's (a shortcut's) mixed with its name, so that body layer j and shortcut layer j
  // never draw the same masks.
  std::uint64_t id = init::tensor_seed(stream_, position);
  if (scope != "body") {
    std::uint64_t name = 14695981039346656037ULL;  // FNV-1a: stable across compilers and runs
    for (const char ch : scope) name = (name ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
    id = init::tensor_seed(id, static_cast<std::size_t>(name));
  }
  c.stream_ = id | (std::uint64_t{1} << 63);
  c.workspace_ = workspace;
  c.input_ = &input;
  c.output_ = &output;
  return c;
}
TensorView LayerContext::parameter(const std::string& name) {
  // Note [16-bit values in fp32 storage]: in bf16 / fp16 the layers compute with the rounded
  // parameters; the optimizer updates the master.
  return (r_.compute != nullptr ? r_.compute : r_.parameters)->view(tensor_name(name));
}
TensorView LayerContext::gradient(const std::string& name) {
  return r_.gradients->view(tensor_name(name));
}
TensorView LayerContext::buffer(const std::string& name) {
  return r_.buffers->view(tensor_name(name));
}
float* LayerContext::workspace() {
  return input_ != nullptr ? workspace_ : r_.workspaces.at(index_);
}
const Shape& LayerContext::input_shape() const {
  return input_ != nullptr ? *input_ : r_.shapes.at(index_);
}
const Shape& LayerContext::output_shape() const {
  return output_ != nullptr ? *output_ : r_.shapes.at(index_ + 1);
}
const std::uint64_t* LayerContext::device_step() const {
  CUTRAIN_CHECK(r_.forward_count != nullptr, "LayerContext::device_step: layer ", index_,
                " reads the device step but its reads_device_step() says it does not");
  return r_.forward_count;
}
Device LayerContext::device() const {
  return r_.device;
}
NativeStream LayerContext::stream() const {
  return r_.stream;
}
std::uint64_t LayerContext::seed() const {
  return r_.seed;
}
const Replica& LayerContext::replica() const {
  return r_.replica;
}
std::int64_t LayerContext::training_rows() const {
  return r_.training_rows;
}

Shape Layer::output_shape(const Shape& input) const {
  const std::int64_t in = numel(input);
  const std::int64_t out = output_features(in);
  return out == in ? input : Shape{out};
}

}  // namespace cutrain::nn
