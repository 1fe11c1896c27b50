// load_model (Note [architecture in exports]): a model rebuilt from the modules an export or a
// checkpoint lists computes what the original does, bit for bit; files that do not describe a
// cutrain model are refused with what is wrong, before anything large is allocated.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "support/temp_path.hpp"

namespace cutrain::train {
namespace {

std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_load_model_test", name);
}

// Every layer kind and option load_model knows, with BatchNorm statistics moved off their
// initial values by a few training-mode passes.
nn::Sequential trained_model() {
  nn::Sequential m(5);
  m.emplace<nn::Linear>(5, 6, /*bias=*/false).emplace<nn::BatchNorm1d>(6, 1e-3F, 0.3F);
  m.emplace<nn::Activation>(nn::Activation::Kind::kLeakyRelu, 0.2F).emplace<nn::Dropout>(0.25F);
  m.emplace<nn::Linear>(6, 4).emplace<nn::BatchNorm1d>(4, 1e-5F, 0.1F, /*affine=*/false);
  m.emplace<nn::Activation>(nn::Activation::Kind::kGelu);
  m.emplace<nn::Linear>(4, 4).emplace<nn::Activation>(nn::Activation::Kind::kTanh);
  m.emplace<nn::Linear>(4, 3).emplace<nn::Activation>(nn::Activation::Kind::kSigmoid);
  m.emplace<nn::Linear>(3, 2).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  m.emplace<nn::Linear>(2, 2).emplace<nn::Activation>(nn::Activation::Kind::kSilu);
  m.emplace<nn::Linear>(2, 3).emplace<nn::Activation>(nn::Activation::Kind::kRelu6);
  m.emplace<nn::Linear>(3, 3).emplace<nn::Activation>(nn::Activation::Kind::kHardswish);
  m.emplace<nn::Linear>(3, 2).emplace<nn::Activation>(nn::Activation::Kind::kElu, 0.4F);
  m.build(Device::cpu(), 4);
  std::vector<float> x(8 * 5);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.1F * static_cast<float>(i % 13) - 0.5F;
  for (int i = 0; i < 3; ++i) m.forward({x.data(), 8, 5, Device::cpu()});
  return m;
}

std::vector<float> eval_outputs(nn::Sequential& m) {
  std::vector<float> x(7 * 5);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.07F * static_cast<float>(i % 11) - 0.3F;
  m.eval();
  const Device device = m.device();
  Buffer xd(x.size() * sizeof(float), device);
  copy_bytes(xd.data(), device, x.data(), Device::cpu(), xd.bytes());
  const nn::Matrix& y = m.forward({xd.as<float>(), 7, 5, device});
  std::vector<float> out(y.size());
  copy_bytes(out.data(), Device::cpu(), y.data, device, out.size() * sizeof(float));
  return out;
}

TEST(LoadModel, RebuildsExportsAndCheckpointsBitForBit) {
  nn::Sequential original = trained_model();
  export_torch(tmp("export.safetensors"), original);
  save_checkpoint(tmp("checkpoint.safetensors"), original, nullptr, TrainState{});
  const std::vector<float> want = eval_outputs(original);
  for (const char* file : {"export.safetensors", "checkpoint.safetensors"}) {
    nn::Sequential loaded = load_model(tmp(file), Device::cpu());
    EXPECT_EQ(loaded.summary(), original.summary()) << file;
    EXPECT_EQ(loaded.parameters().to_host(), original.parameters().to_host()) << file;
    EXPECT_EQ(loaded.buffers().to_host(), original.buffers().to_host()) << file;
    EXPECT_EQ(eval_outputs(loaded), want) << file;
  }
}

// The same file on the GPU: the model the CPU loaded, to GEMM rounding.
TEST(LoadModelGpu, RebuildsOnTheGpu) {
  CUTRAIN_REQUIRE_GPU();
  nn::Sequential original = trained_model();
  export_torch(tmp("export_gpu.safetensors"), original);
  nn::Sequential loaded = load_model(tmp("export_gpu.safetensors"), Device::cuda(0));
  EXPECT_EQ(loaded.parameters().to_host(), original.parameters().to_host());
  const std::vector<float> want = eval_outputs(original), got = eval_outputs(loaded);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
}

// A one-Linear file whose "cutrain.modules" says `modules`.
std::string with_modules(const std::string& name, const std::string& modules) {
  const std::vector<float> w(3 * 2, 0.5F), b(3, 0.25F);
  const std::string path = tmp(name);
  io::save_safetensors(path,
                       {io::make_tensor("0.weight", {3, 2}, w), io::make_tensor("0.bias", {3}, b)},
                       {{"format", "pt"}, {"cutrain.modules", modules}});
  return path;
}

// A CPU model after three training-mode passes (its BatchNorm statistics moved), exported and
// rebuilt by load_model: the same modules, statistics and eval-mode outputs, bit for bit.
void expect_rebuilt_alike(nn::Sequential& original, std::int64_t rows, const std::string& name) {
  const std::int64_t cols = original.input_features();
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.3F * static_cast<float>(i));
  for (int i = 0; i < 3; ++i) original.forward({x.data(), rows, cols, Device::cpu()});
  export_torch(tmp(name), original);
  nn::Sequential rebuilt = load_model(tmp(name), Device::cpu());
  EXPECT_EQ(rebuilt.torch_modules(), original.torch_modules());
  EXPECT_EQ(rebuilt.buffers().to_host(), original.buffers().to_host());
  original.eval();
  rebuilt.eval();
  const nn::Matrix& a = original.forward({x.data(), rows, cols, Device::cpu()});
  const std::vector<float> want(a.data, a.data + a.size());
  const nn::Matrix& b = rebuilt.forward({x.data(), rows, cols, Device::cpu()});
  EXPECT_EQ(std::vector<float>(b.data, b.data + b.size()), want);
}

// Every convolutional layer kind and option, exported and rebuilt: the same outputs bit for bit.
TEST(LoadModel, RebuildsConvolutionalModelsBitForBit) {
  nn::Sequential original(2 * 9 * 8);
  original.emplace<nn::Unflatten>(1, Shape{2, 9, 8});
  original.emplace<nn::Conv2d>(2, 4, nn::Size2{3, 2}, nn::Size2{1, 2}, nn::Size2{1, 0},
                               nn::Size2{2, 1});
  original.emplace<nn::BatchNorm2d>(4, 1e-3F, 0.2F)
      .emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  original.emplace<nn::MaxPool2d>(3, 1, 1).emplace<nn::Conv2d>(4, 4, 3, 1, 1, 1, true, 4);
  original.emplace<nn::Conv2d>(4, 6, 1, 1, 0, 1, true, 2)
      .emplace<nn::Conv2d>(6, 3, 1, 1, 0, 1, false);
  original.emplace<nn::BatchNorm2d>(3, 1e-5F, 0.1F, false).emplace<nn::AvgPool2d>(2, 1);
  original.emplace<nn::AdaptiveAvgPool2d>(nn::Size2{2, 1}).emplace<nn::Flatten>();
  original.emplace<nn::Linear>(6, 5);
  original.build(Device::cpu(), 3);
  expect_rebuilt_alike(original, 6, "cnn.safetensors");
}

// Residual blocks, one inside another, with BatchNorm statistics and Dropout in the bodies.
TEST(LoadModel, RebuildsResidualModelsBitForBit) {
  nn::Sequential original(2 * 6 * 5);
  original.emplace<nn::Unflatten>(1, Shape{2, 6, 5}).emplace<nn::Conv2d>(2, 3, 3, 1, 1);
  auto inner = std::make_unique<nn::Residual>();
  inner->emplace<nn::Conv2d>(3, 3, 1, 1, 0, 1, false).emplace<nn::BatchNorm2d>(3, 1e-3F, 0.2F);
  auto outer = std::make_unique<nn::Residual>();
  outer->emplace<nn::Conv2d>(3, 3, 3, 1, 1).emplace<nn::BatchNorm2d>(3);
  outer->emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.2F);
  outer->add(std::move(inner));
  original.add(std::move(outer));
  original.emplace<nn::Flatten>().emplace<nn::Linear>(90, 4);
  original.build(Device::cpu(), 6);
  expect_rebuilt_alike(original, 5, "residual.safetensors");
}

// A block with a projection shortcut (BasicBlock with its downsample): the block changes the
// shape, and both branches' tensors and statistics come back.
TEST(LoadModel, RebuildsProjectionShortcutsBitForBit) {
  nn::Sequential original(2 * 6 * 5);
  original.emplace<nn::Unflatten>(1, Shape{2, 6, 5});
  auto block = std::make_unique<nn::Residual>();
  block->emplace<nn::Conv2d>(2, 4, 3, 2, 1).emplace<nn::BatchNorm2d>(4);
  block->emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Conv2d>(4, 4, 3, 1, 1);
  block->emplace_shortcut<nn::Conv2d>(2, 4, 1, 2, 0, 1, false);
  block->emplace_shortcut<nn::BatchNorm2d>(4, 1e-3F, 0.2F);
  original.add(std::move(block));
  original.emplace<nn::Flatten>().emplace<nn::Linear>(36, 3);
  original.build(Device::cpu(), 6);
  expect_rebuilt_alike(original, 5, "shortcut.safetensors");
}

TEST(LoadModel, RefusesWhatItCannotBuildNamingIt) {
  auto refusal = [](const std::string& name, const std::string& modules) {
    return testing::error_of([&] { load_model(with_modules(name, modules), Device::cpu()); });
  };
  const std::string linear = R"({"type": "Linear", "args": {"in_features": 2, "out_features": 3}})";
  // The plain case loads; each refusal differs from it in one thing.
  EXPECT_EQ(refusal("ok", "[" + linear + "]"), "(no error)");
  const struct {
    const char* name;
    std::string modules, message;
  } cases[] = {
      {"lstm", R"([{"type": "LSTM", "args": {}}])", "torch.nn.LSTM is not a cutrain layer"},
      {"conv", R"([{"type": "Conv2d", "args": {}}])",
       "module 0 (Conv2d): 'in_channels' must be an integer"},
      {"groups",
       R"([{"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [2, 1, 1]}},
           {"type": "Conv2d", "args": {"in_channels": 2, "out_channels": 4, "kernel_size": 1,
                                       "groups": 4}}])",
       "module 1 (Conv2d): groups = 4 must be positive and divide in_channels (2) and "
       "out_channels (4)"},
      {"ceil", R"([{"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [1, 2, 1]}},
                   {"type": "MaxPool2d", "args": {"kernel_size": 2, "ceil_mode": true}}])",
       "ceil_mode = true is not supported"},
      {"kernel", R"([{"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [1, 2, 1]}},
                     {"type": "AvgPool2d", "args": {"kernel_size": [2, 0]}}])",
       "kernel_size = 0 is out of range"},
      {"huge_conv",
       R"([{"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [60000, 1, 1]}},
           {"type": "Conv2d", "args": {"in_channels": 60000, "out_channels": 60000,
                                       "kernel_size": 60000}}])",
       "but the file only 9 values"},
      // 2^30 x 2^30 x 16 weights: 2^64, which a plain product wraps to 0.
      {"wrapping_conv",
       R"([{"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [1073741824, 1, 1]}},
           {"type": "Conv2d", "args": {"in_channels": 1073741824, "out_channels": 1073741824,
                                       "kernel_size": [16, 1], "bias": false}}])",
       "but the file only 9 values"},
      {"residual_args", "[" + linear + R"(, {"type": "Residual", "args": {}}])",
       "module 1 (Residual): 'body' must be a list of modules"},
      {"residual_inner", "[" + linear + R"(, {"type": "Residual", "args": {"body": [
           {"type": "ReLU"}, {"type": "LSTM"}]}}])",
       "module 1 body 1: torch.nn.LSTM is not a cutrain layer"},
      {"residual_shape", "[" + linear + R"(, {"type": "Residual", "args": {"body": [
           {"type": "Unflatten", "args": {"unflattened_size": [3, 1, 1]}}]}}])",
       "layer 1 (Residual) cannot take input of shape [3]: the body maps [3] to [3, 1, 1]"},
      {"shortcut_empty", "[" + linear + R"(, {"type": "Residual", "args": {"body": [
           {"type": "ReLU"}], "shortcut": []}}])",
       "module 1 (Residual): 'shortcut' must be a list of modules"},
      {"shortcut_inner", "[" + linear + R"(, {"type": "Residual", "args": {"body": [
           {"type": "ReLU"}], "shortcut": [{"type": "GRU"}]}}])",
       "module 1 shortcut 0: torch.nn.GRU is not a cutrain layer"},
      {"shortcut_shape", "[" + linear + R"(, {"type": "Residual", "args": {"body": [
           {"type": "ReLU"}], "shortcut": [{"type": "Unflatten", "args": {"unflattened_size":
           [3, 1, 1]}}]}}])",
       "the body maps [3] to [3] but the shortcut to [3, 1, 1]"},
      {"residual_depth",
       "[" + linear + ", " +
           [] {
             std::string nested = R"({"type": "ReLU"})";
             for (int d = 0; d < 17; ++d)
               nested = R"({"type": "Residual", "args": {"body": [)" + nested + "]}}";
             return nested;
           }() +
           "]",
       "Residuals nested more than 16 deep"},
      // Shapes that do not fit are refused by Sequential::build, naming the layer.
      {"image_shape",
       R"([{"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [1, 2, 2]}},
           {"type": "Conv2d", "args": {"in_channels": 1, "out_channels": 1, "kernel_size": 3,
                                       "bias": false}}])",
       "layer 1 (Conv2d) cannot take input of shape [1, 2, 2]"},
      {"arg", "[" + linear + R"(, {"type": "ReLU", "args": {"foo": 1}}])",
       "module 1 (ReLU): unknown argument 'foo'"},
      {"tanh_gelu", "[" + linear + R"(, {"type": "GELU", "args": {"approximate": "tanh"}}])",
       "approximate = \"tanh\" is not supported"},
      {"json", "[{", "is not valid JSON"},
      {"empty", "[]", "must list 1 to"},
      {"width", R"([{"type": "Linear", "args": {"in_features": -2, "out_features": 3}}])",
       "in_features = -2 is not a feature count"},
      {"nan", "[" + linear + R"(, {"type": "Dropout", "args": {"p": "x"}}])",
       "'p' must be a finite number"},
      // A header claiming a huge layer is refused before the arena is allocated.
      {"huge",
       R"([{"type": "Linear", "args": {"in_features": 2000000000, "out_features": 2000000000}}])",
       "but the file only 9 values"},
      // Modules that do not chain; weights of another shape (load_weights names the tensor).
      {"chain",
       "[" + linear + R"(, {"type": "Linear", "args": {"in_features": 4, "out_features": 1}}])",
       "expects 4 input features but the previous layer gives 3"},
      {"shape", R"([{"type": "Linear", "args": {"in_features": 3, "out_features": 2}}])",
       "0.weight"},
  };
  for (const auto& c : cases) {
    const std::string e = refusal(c.name, c.modules);
    EXPECT_NE(e.find(c.message), std::string::npos) << c.name << ": " << e;
  }
  // A file with weights but no architecture.
  const std::vector<float> w(6, 1.0F);
  io::save_safetensors(tmp("bare"), {io::make_tensor("0.weight", {3, 2}, w)}, {});
  const std::string e = testing::error_of([&] { load_model(tmp("bare"), Device::cpu()); });
  EXPECT_NE(e.find("no 'cutrain.modules' metadata"), std::string::npos) << e;
}

}  // namespace
}  // namespace cutrain::train
