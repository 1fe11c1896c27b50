// A custom layer, as a user writes one: Mish (x tanh(softplus(x)), torch.nn.Mish), its math
// written once as a __host__ __device__ rule that a CUDA kernel and a CPU loop both call - the
// pattern cutrain's own layers follow - then checked against finite differences with
// nn::check_gradients, trained in a Sequential by the Trainer, and exported so that PyTorch
// rebuilds it (kind() and torch_args() name torch.nn.Mish).
//   build/bin/custom_layer
// The data: two interleaved spirals (2 features, 2 classes), which no linear model separates and
// a small MLP does (> 95% asked; 99.4% on the CPU). Exits 1 if the gradients or the accuracy
// fail.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cutrain/cutrain.hpp>
#include <filesystem>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>

namespace {

using namespace cutrain;

// y = x tanh(softplus(x));  dy/dx = t + x s (1 - t^2) with t = tanh(softplus(x)), s = sigmoid(x)
// (PyTorch's mish_backward). softplus(x) = log(1 + e^x), taken as x above 20 as torch's
// softplus does (e^x would overflow; the difference is below float's resolution there).
CUTRAIN_HD float softplus(float x) {
  return x > 20.0F ? x : log1pf(expf(x));
}
CUTRAIN_HD float mish(float x) {
  return x * tanhf(softplus(x));
}
CUTRAIN_HD float mish_grad(float x, float dy) {
  const float t = tanhf(softplus(x));
  const float s = 1.0F / (1.0F + expf(-x));
  return dy * (t + x * s * (1.0F - t * t));
}

// Thin grid-stride loops over the rules. (cutrain's own element-wise kernels also load 16-byte
// vectors; a first custom layer need not.)
__global__ void mish_forward_kernel(const float* x, float* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    y[i] = mish(x[i]);
}
__global__ void mish_backward_kernel(const float* x, const float* dy, float* dx, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    dx[i] = mish_grad(x[i], dy[i]);
}

void check_launch() {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(cudaGetErrorString(e));
}

unsigned grid_for(std::size_t n) {
  return static_cast<unsigned>(std::min<std::size_t>((n + 255) / 256, 1024));
}

class Mish final : public nn::Layer {
 public:
  std::string kind() const override { return "Mish"; }  // torch.nn.Mish(), no arguments
  void forward(nn::LayerContext& ctx, const nn::Matrix& x, nn::Matrix& y) override {
    const std::size_t n = x.size();
    if (ctx.device().is_cpu()) {
      for (std::size_t i = 0; i < n; ++i) y.data[i] = mish(x.data[i]);
      return;
    }
    // On the model's stream: ordered after the previous layer, no host wait.
    mish_forward_kernel<<<grid_for(n), 256, 0, ctx.stream()>>>(x.data, y.data, n);
    check_launch();
  }
  void backward(nn::LayerContext& ctx, const nn::Matrix& x, const nn::Matrix& /*y*/,
                const nn::Matrix& dy, nn::Matrix& dx) override {
    if (dx.data == nullptr) return;  // the first layer: no one needs dL/dx
    const std::size_t n = x.size();
    if (ctx.device().is_cpu()) {
      for (std::size_t i = 0; i < n; ++i) dx.data[i] = mish_grad(x.data[i], dy.data[i]);
      return;
    }
    mish_backward_kernel<<<grid_for(n), 256, 0, ctx.stream()>>>(x.data, dy.data, dx.data, n);
    check_launch();
  }
};

// Two spirals, r = t, angle t + pi * class, t in [0.25, 3 pi], with a little noise.
data::Dataset spirals(std::int64_t rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> t_of(0.25F, 3.0F * std::numbers::pi_v<float>);
  std::normal_distribution<float> noise(0.0F, 0.1F);
  data::Dataset d;
  d.rows = rows;
  d.features = 2;
  d.classes = 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int32_t c = static_cast<std::int32_t>(r % 2);
    const float t = t_of(rng);
    const float a = t + std::numbers::pi_v<float> * static_cast<float>(c);
    d.x.push_back(t * std::cos(a) / 3.0F + noise(rng));
    d.x.push_back(t * std::sin(a) / 3.0F + noise(rng));
    d.labels.push_back(c);
  }
  return d;
}

nn::Sequential mlp() {
  nn::Sequential m(2);
  m.emplace<nn::Linear>(2, 64).emplace<Mish>().emplace<nn::Linear>(64, 64).emplace<Mish>();
  m.emplace<nn::Linear>(64, 2);
  return m;
}

}  // namespace

int main() {
  try {
    // 1. The gradients, on the CPU and on the GPU if there is one: the same rule both ways.
    bool gradients_ok = true;
    for (const Device device : {Device::cpu(), default_device()}) {
      nn::Sequential m = mlp();
      m.build(device, 1);
      const nn::GradCheckResult g = nn::check_gradients(m, {.batch = 8});
      std::printf("check_gradients on %s: %s, %zu coordinates, worst %s\n", device.str().c_str(),
                  g.passed ? "passed" : "FAILED", g.checked, g.worst.c_str());
      gradients_ok = gradients_ok && g.passed;
      if (device.is_cpu() && default_device().is_cpu()) break;
    }

    // 2. Training it like any other layer.
    const data::Dataset train = spirals(4000, 1), test = spirals(1000, 2);
    nn::Sequential model = mlp();
    model.build(default_device(), 1);
    optim::Adam opt(model.parameters(), {.lr = 3e-3F});
    train::TrainerOptions options;
    options.epochs = 40;
    options.batch_size = 64;
    options.progress = false;
    train::Trainer trainer(model, opt, options);
    trainer.fit(train);
    const train::EvalResult e = trainer.evaluate(test);
    std::printf("two spirals, test accuracy %.4f, loss %.4f (%s)\n", e.accuracy, e.loss,
                model.device().str().c_str());

    // 3. The export names torch.nn.Mish: cutrain_torch.build_model rebuilds the network.
    const std::string path =
        (std::filesystem::temp_directory_path() / "cutrain_custom_layer.safetensors").string();
    train::export_torch(path, model);
    const bool named = model.torch_modules().find("\"Mish\"") != std::string::npos;
    std::printf("exported to %s (modules %s)\n", path.c_str(), model.torch_modules().c_str());
    std::filesystem::remove(path);
    return gradients_ok && e.accuracy > 0.95 && named ? 0 : 1;
  } catch (const std::exception& err) {
    std::fprintf(stderr, "custom_layer: %s\n", err.what());
    return 1;
  }
}
