// Training a model with the library, as a C++ user does: Fashion-MNIST from its IDX files, an
// MLP on the default device (the first usable GPU, else the CPU), AdamW with no weight decay on
// biases, a cosine schedule, global-norm clipping, a validation split, a checkpoint every epoch,
// then the test set and a PyTorch-loadable export. README's training example.
//   build/bin/train_mlp [fashion-mnist dir] [epochs]
#include <cutrain/cutrain.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

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

constexpr const char* kUsage = "train_mlp [fashion-mnist dir] [epochs]";

}  // namespace

int main(int argc, char** argv) {
  using namespace cutrain;
  const std::string dir = argc > 1 ? argv[1] : data::kFashionMnistDir;
  const std::int64_t epochs = argc > 2 ? count_arg(argv[2], kUsage) : 3;
  data::Dataset train_all, test;
  try {
    train_all = data::load_fashion_mnist(dir, "train");
    test = data::load_fashion_mnist(dir, "test");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n(apt-get install dataset-fashion-mnist)\n", e.what());
    return 77;  // "skipped" for CTest
  }
  for (data::Dataset* d : {&train_all, &test})
    for (float& v : d->x) v /= 255.0F;  // pixels to [0, 1]
  const auto [train, val] = data::split(train_all, /*validation_fraction=*/0.1, /*seed=*/1);

  try {
    const Device device = default_device();
    nn::Sequential model(784);
    model.emplace<nn::Linear>(784, 256).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    model.emplace<nn::Dropout>(0.1F).emplace<nn::Linear>(256, 10);
    model.build(device, /*seed=*/1);  // He initialization for the ReLU layers
    std::printf("device %s\n%s", device.str().c_str(), model.summary().c_str());

    optim::AdamW opt(model.parameters(), {.lr = 1e-3F, .weight_decay = 1e-4F});
    opt.set_group(nn::kNoDecayGroup, {.lr_scale = 1.0F, .weight_decay = 0.0F});  // biases

    train::TrainerOptions o;
    o.epochs = epochs;
    o.batch_size = 128;
    o.clip_norm = 1.0F;
    const std::int64_t steps_per_epoch = (train.rows + o.batch_size - 1) / o.batch_size;
    o.schedule = std::make_shared<optim::CosineLr>(1e-3, epochs * steps_per_epoch);
    o.checkpoint_path = (std::filesystem::temp_directory_path() / "train_mlp.safetensors").string();
    train::Trainer trainer(model, opt, o);  // o.progress: a line per epoch on stderr
    const train::FitResult fit = trainer.fit(train, &val);

    const train::EvalResult result = trainer.evaluate(test);
    const std::string exported =
        (std::filesystem::temp_directory_path() / "train_mlp_torch.safetensors").string();
    train::export_torch(exported, model);  // torch.nn.Sequential's state_dict names
    std::printf(
        "%zu epochs: validation accuracy %.4f, test accuracy %.4f (checkpoint %s, "
        "PyTorch weights %s)\n",
        fit.history.size(), fit.history.back().val_accuracy, result.accuracy,
        o.checkpoint_path.c_str(), exported.c_str());
    return result.accuracy > 0.8 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
