// A convolutional network with the library, as a C++ user builds one: the loader's flat rows
// unflattened to 1x28x28 images, a Conv2d + BatchNorm2d + ReLU block with max pooling, a
// residual block, a residual block that downsamples (a projection shortcut), a fully connected
// classifier; AdamW, a cosine schedule, the test set, a PyTorch-loadable export.
//   build/bin/train_cnn [fashion-mnist dir] [epochs] [training images]
#include <cutrain/cutrain.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace {

// A count from the command line (1 to 10^9), or a line saying what was wrong, the usage and
// exit status 2 - not std::stoll's exception ending the program. (Each example stands alone, as
// a user copies it: train_mlp.cpp and train_cnn.cpp each keep this copy.)
std::int64_t count_arg(const char* text, const char* usage) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || n < 1 || n > 1000000000) {
    std::fprintf(stderr, "'%s' is not a count from 1 to 10^9\nusage: %s\n", text, usage);
    std::exit(2);
  }
  return n;
}

constexpr const char* kUsage = "train_cnn [fashion-mnist dir] [epochs] [training images]";

}  // namespace

int main(int argc, char** argv) {
  using namespace cutrain;
  const std::string dir = argc > 1 ? argv[1] : data::kFashionMnistDir;
  const std::int64_t epochs = argc > 2 ? count_arg(argv[2], kUsage) : 2;
  const std::int64_t rows = argc > 3 ? count_arg(argv[3], kUsage) : 60000;
  data::Dataset train, test;
  try {
    train = data::load_fashion_mnist(dir, "train");
    test = data::load_fashion_mnist(dir, "test");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n(apt-get install dataset-fashion-mnist)\n", e.what());
    return 77;  // "skipped" for CTest
  }
  if (rows < train.rows) {  // the first `rows` images
    std::vector<std::int64_t> first(static_cast<std::size_t>(rows));
    std::iota(first.begin(), first.end(), std::int64_t{0});
    train = train.subset(first);
  }
  for (data::Dataset* d : {&train, &test})
    for (float& v : d->x) v /= 255.0F;  // pixels to [0, 1]

  try {
    const Device device = default_device();
    nn::Sequential model(784);
    model.emplace<nn::Unflatten>(1, Shape{1, 28, 28});  // [784] -> [1, 28, 28]
    model.emplace<nn::Conv2d>(1, 16, /*kernel_size=*/3, /*stride=*/1, /*padding=*/1);
    model.emplace<nn::BatchNorm2d>(16).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    model.emplace<nn::MaxPool2d>(2);  // -> [16, 14, 14]
    // A residual block, x + body(x) (torchvision's BasicBlock: the ReLU after the sum).
    auto block = std::make_unique<nn::Residual>();
    block->emplace<nn::Conv2d>(16, 16, 3, 1, 1).emplace<nn::BatchNorm2d>(16);
    block->emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    block->emplace<nn::Conv2d>(16, 16, 3, 1, 1).emplace<nn::BatchNorm2d>(16);
    model.add(std::move(block));
    model.emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    // A block that downsamples, shortcut(x) + body(x): its body strides, its projection shortcut
    // (BasicBlock's downsample: a 1x1 convolution of the same stride) follows.
    auto down = std::make_unique<nn::Residual>();  // -> [32, 7, 7]
    down->emplace<nn::Conv2d>(16, 32, 3, /*stride=*/2, 1).emplace<nn::BatchNorm2d>(32);
    down->emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    down->emplace<nn::Conv2d>(32, 32, 3, 1, 1).emplace<nn::BatchNorm2d>(32);
    down->emplace_shortcut<nn::Conv2d>(16, 32, 1, /*stride=*/2, 0, 1, /*bias=*/false);
    down->emplace_shortcut<nn::BatchNorm2d>(32);
    model.add(std::move(down));
    model.emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    model.emplace<nn::Flatten>();  // -> [32 * 7 * 7]
    model.emplace<nn::Linear>(32 * 7 * 7, 10);
    model.build(device, /*seed=*/1);  // He initialization: ReLUs follow the convolutions
    std::printf("device %s\n%s", device.str().c_str(), model.summary().c_str());

    optim::AdamW opt(model.parameters(), {.lr = 2e-3F, .weight_decay = 1e-4F});
    opt.set_group(nn::kNoDecayGroup, {.lr_scale = 1.0F, .weight_decay = 0.0F});  // biases, BN

    train::TrainerOptions o;
    o.epochs = epochs;
    o.batch_size = 128;
    const std::int64_t steps_per_epoch = (train.rows + o.batch_size - 1) / o.batch_size;
    o.schedule = std::make_shared<optim::CosineLr>(2e-3, epochs * steps_per_epoch);
    train::Trainer trainer(model, opt, o);
    trainer.fit(train);

    const train::EvalResult result = trainer.evaluate(test);
    const std::string exported =
        (std::filesystem::temp_directory_path() / "train_cnn_torch.safetensors").string();
    train::export_torch(exported, model);  // cutrain_torch.build_model(exported) in Python
    std::printf("%lld epochs on %lld images: test accuracy %.4f (PyTorch export %s)\n",
                static_cast<long long>(epochs), static_cast<long long>(train.rows), result.accuracy,
                exported.c_str());
    return result.accuracy > 0.8 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
