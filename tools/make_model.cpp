// What cutrain-train's model flags build (tools/train_options.hpp): the hidden sizes, the image
// shape, the default CNN (Note [the default CNN]) and the MLP, or the model a file describes.
#include <exception>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tools/train_options.hpp"

namespace cutrain::tools {

std::vector<std::int64_t> parse_hidden(const std::string& text) {
  return parse_sizes("--hidden", text);
}

std::vector<std::int64_t> parse_sizes(const char* flag, const std::string& text) {
  std::vector<std::int64_t> sizes;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v <= 0 || v > (1LL << 24))
      throw UsageError(std::string(flag) + ": '" + text +
                       "' must be positive integers (at most 2^24) separated by commas");
    sizes.push_back(v);
  }
  return sizes;
}

std::vector<std::int64_t> image_shape(const Config& c, std::int64_t features) {
  std::vector<std::int64_t> shape = c.input_shape.empty()
                                        ? std::vector<std::int64_t>{1, 28, 28}
                                        : parse_sizes("--input-shape", c.input_shape);
  if (shape.size() != 3 || shape[0] * shape[1] * shape[2] != features)
    throw UsageError(
        "--input-shape: " +
        (c.input_shape.empty() ? std::string("the default 1,28,28") : "'" + c.input_shape + "'") +
        " must be C,H,W with C x H x W = the data's " + std::to_string(features) + " features");
  return shape;
}

data::EvalAugment eval_augment(const Config& c, std::int64_t features) {
  if (!c.eval_flip) return {};
  return {.image = image_shape(c, features), .flip = true};
}

namespace {

// Note [the default CNN]: cutrain-train --model cnn is the VGG-style net of the Fashion-MNIST
// benchmarks' "simple CNN" rows: Unflatten to [C, H, W], then per --channels entry k two
// Conv2d(k, 3x3, padding 1) -> BatchNorm2d -> activation and a 2x2 MaxPool2d, then Flatten and
// the fully connected classifier (--hidden, default 128, with --dropout). With the defaults
// (32,64) that is 28x28x1 -> 14x14x32 -> 7x7x64 -> 3136 -> 128 -> 10. Returns the flat width.
// Its recipe (tools/cutrain_train.cpp): AdamW, batch 128, 5 epochs of OneCycleLR peaking at
// 5e-3 - super-convergence's large rate, which BatchNorm tolerates: 93.29-93.44% on
// Fashion-MNIST, where 10 epochs of cosine decay from 1e-3 gave 93.15-93.17% (bench/RESULTS.md).
// --residual-blocks N adds N Residual blocks after each pool, at the block's resolution and
// channels, each x + [Conv2d 3x3 -> BatchNorm2d -> activation] twice: the residuals of the
// DAWNBench ResNet-9 (its activations inside the body, so the block needs no new layer kind).
template <class M>  // nn::Sequential or nn::Residual
void add_conv_bn(M& m, const Config& c, std::int64_t in, std::int64_t out,
                 const nn::Activation& act) {
  auto layer = std::make_unique<nn::Conv2d>(in, out, 3, 1, 1);
  if (!c.init.empty()) layer->set_init(init::Scheme::parse(c.init));
  m.add(std::move(layer));
  m.template emplace<nn::BatchNorm2d>(out);
  m.add(std::make_unique<nn::Activation>(act));
}

std::int64_t add_conv_blocks(nn::Sequential& model, const Config& c, std::int64_t features,
                             const nn::Activation& act) {
  std::vector<std::int64_t> shape = image_shape(c, features);
  model.emplace<nn::Unflatten>(1, shape);
  std::int64_t channels = shape[0];
  const std::vector<std::int64_t> blocks = parse_sizes("--channels", c.channels);
  // An empty list built Unflatten -> Flatten -> the classifier: an MLP under the CNN's name.
  if (blocks.empty())
    throw UsageError(
        "--channels: empty; --model cnn needs at least one block (e.g. 32,64), or "
        "give --model mlp");
  for (const std::int64_t k : blocks) {
    for (int conv = 0; conv < 2; ++conv) {
      add_conv_bn(model, c, channels, k, act);
      channels = k;
    }
    if (shape[1] < 2 || shape[2] < 2)
      throw UsageError("--channels: " + std::to_string(blocks.size()) + " blocks halve the " +
                       std::to_string(features) + "-feature image below 1x1: give fewer");
    model.emplace<nn::MaxPool2d>(2);
    shape = {k, shape[1] / 2, shape[2] / 2};
    for (int r = 0; r < c.residual_blocks; ++r) {
      auto block = std::make_unique<nn::Residual>();
      add_conv_bn(*block, c, k, k, act);
      add_conv_bn(*block, c, k, k, act);
      model.add(std::move(block));
    }
  }
  model.emplace<nn::Flatten>();
  return shape[0] * shape[1] * shape[2];
}

}  // namespace

namespace {
// Note [TF32 switch]: --precision, refused with exit 2 where the model cannot honour it.
nn::Sequential with_precision(nn::Sequential model, const Config& c) {
  try {
    model.set_precision(parse_precision(c.precision));
  } catch (const Error& e) {
    throw UsageError("--precision " + c.precision + ": " + e.what());
  }
  model.set_rounding(parse_rounding(c.rounding));  // 16-bit precisions only: flag_checks
  return model;
}
}  // namespace

nn::Sequential make_model(const Config& c, const std::vector<std::int64_t>& hidden,
                          std::int64_t features, std::int64_t outputs, Device device) {
  if (!c.model_from.empty()) {
    nn::Sequential model = train::load_model(c.model_from, device, c.seed);
    if (model.input_features() != features || model.output_features() != outputs)
      throw UsageError("--model-from '" + c.model_from + "': the model maps " +
                       std::to_string(model.input_features()) + " features to " +
                       std::to_string(model.output_features()) + " outputs, the data has " +
                       std::to_string(features) + " features and needs " + std::to_string(outputs) +
                       " outputs");
    return with_precision(std::move(model), c);
  }
  nn::Sequential model(features);
  std::int64_t width = features;
  const nn::Activation act = nn::Activation::parse(c.activation);
  if (c.model == "cnn") width = add_conv_blocks(model, c, features, act);
  for (const std::int64_t h : hidden) {
    auto lin = std::make_unique<nn::Linear>(width, h);
    if (!c.init.empty()) lin->set_init(init::Scheme::parse(c.init));
    model.add(std::move(lin));
    if (c.batchnorm) model.emplace<nn::BatchNorm1d>(h);
    model.add(std::make_unique<nn::Activation>(act));
    if (c.dropout > 0) model.emplace<nn::Dropout>(c.dropout);
    width = h;
  }
  model.emplace<nn::Linear>(width, outputs);
  model.build(device, c.seed);
  return with_precision(std::move(model), c);
}

}  // namespace cutrain::tools
