// bench_step: one training step of cutrain-train's default model (MLP 784-512-256-10, ReLU,
// dropout 0.2, AdamW with weight decay, clip-norm 1; batch 128 by default) - forward, softmax
// cross-entropy, backward, and the clip and the step - issued as the Trainer issues it, the host
// launching every kernel ("eager"), and on CUDA the same steps replayed from a CUDA graph, which
// costs the device's time alone. fraction_of_graph = graph time / eager time is the share of an
// eager step the device needs: near 1, launches hide behind the GPU's work; well below 1, the
// host's launches set the pace, and the Trainer's graphed step (Note [the step as one CUDA
// graph]) buys 1 / fraction. Also the host's time to issue a step, and the step's GEMM rate
// (3 GEMMs per Linear or Conv2d: forward, dx, dW). --precision runs the step in that precision
// (fp16 with dynamic loss scaling, as cutrain-train does). --model cnn: the default CNN of
// `cutrain-train --model cnn` instead (two blocks of 2 x [3x3 Conv2d, BatchNorm2d, ReLU] and a
// 2x2 max pool, 32 then 64 channels; Linear 3136-128, ReLU, dropout 0.2; Linear 128-10).
//   bench_step [--device cuda] [--model cnn] [--batch 128] [--precision bf16] [--json]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common.hpp"
#include "cutrain/cutrain.hpp"
#include "options.hpp"

using namespace cutrain;

namespace {

struct Rows {
  Buffer x, labels, grad;
};

// The default MLP (cutrain-train's main job), and the forward + backward FLOPs of one sample.
nn::Sequential mlp(double& flop_per_sample) {
  nn::Sequential model(784);
  std::int64_t in = 784;
  for (const std::int64_t width : {512, 256}) {
    model.emplace<nn::Linear>(in, width);
    model.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.2F);
    in = width;
  }
  model.emplace<nn::Linear>(256, 10);
  flop_per_sample = 6.0 * (784.0 * 512 + 512.0 * 256 + 256.0 * 10);
  return model;
}

// The default CNN (tools/make_model.cpp with --model cnn and its defaults). FLOPs: 2 x
// (output pixels x out channels x in channels x 9) a conv forward, 3 times for the backward's
// dx and dW (conv1's dx, which backward skips for the input, counted too).
nn::Sequential cnn(double& flop_per_sample) {
  nn::Sequential model(784);
  model.emplace<nn::Unflatten>(1, std::vector<std::int64_t>{1, 28, 28});
  std::int64_t channels = 1, side = 28;
  flop_per_sample = 0;
  for (const std::int64_t k : {32, 64}) {
    for (int conv = 0; conv < 2; ++conv) {
      model.emplace<nn::Conv2d>(channels, k, 3, 1, 1);
      model.emplace<nn::BatchNorm2d>(k);
      model.emplace<nn::Activation>(nn::Activation::Kind::kRelu);
      flop_per_sample += 6.0 * static_cast<double>(side * side * k * channels * 9);
      channels = k;
    }
    model.emplace<nn::MaxPool2d>(2);
    side /= 2;
  }
  model.emplace<nn::Flatten>();
  model.emplace<nn::Linear>(channels * side * side, 128);
  model.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Dropout>(0.2F);
  model.emplace<nn::Linear>(128, 10);
  flop_per_sample += 6.0 * (static_cast<double>(channels * side * side) * 128 + 128.0 * 10);
  return model;
}

std::string number_or_null(double v) {
  if (!(v > 0)) return "null";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"One training step, eager and from a CUDA graph"};
  std::string device_name = "auto";
  bool json = false;
  std::int64_t batch = 128;
  double min_seconds = 0.2;
  float clip = 1.0F;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto");
  app.add_option("--batch", batch, "batch size")->check(bench::count());
  app.add_option("--clip-norm", clip, "max global norm (0: no clipping)")
      ->check(bench::in_range(0, 3.4e38, "a finite number >= 0"));
  app.add_option("--min-seconds", min_seconds, "timed seconds per measurement")
      ->check(bench::seconds());
  std::string precision_name = "fp32";
  app.add_option("--precision", precision_name,
                 "fp32, tf32 (CUDA), bf16 or fp16 (with dynamic loss scaling)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  std::string model_name = "mlp";
  app.add_option("--model", model_name, "mlp (784-512-256-10) or cnn (cutrain-train's default CNN)")
      ->check(CLI::IsMember({"mlp", "cnn"}));
  app.add_flag("--json", json, "one JSON object per line per measurement");
  if (const int rc = bench::parse(app, argc, argv); rc >= 0) return rc;
  try {
    const Device device = device_name == "auto" ? default_device() : Device::parse(device_name);
    require_usable(device);
    Stream stream(device);
    const NativeStream s = stream.native();

    double flop_per_sample = 0;
    nn::Sequential model = model_name == "cnn" ? cnn(flop_per_sample) : mlp(flop_per_sample);
    const std::string model_label = model_name == "cnn" ? "cnn-32-64" : "mlp-784-512-256-10";
    model.build(device, 1);
    const Precision precision = parse_precision(precision_name);
    model.set_precision(precision);
    optim::AdamW opt(model.parameters(), {.lr = 1e-3F, .weight_decay = 1e-4F});
    opt.set_group(nn::kNoDecayGroup, {.lr_scale = 1.0F, .weight_decay = 0.0F});
    if (precision == Precision::kFp16) opt.enable_loss_scaling();
    // As Trainer::fit (Note [16-bit compute copy]): training forwards read the step's 16-bit copy.
    if (is_half(precision)) {
      opt.enable_compute_copy(model.parameters(), precision);
      model.set_parameter_copy(&opt.compute_copy());
    }
    GradClipper clipper(device, clip > 0 ? clip : std::numeric_limits<float>::infinity());
    nn::SoftmaxCrossEntropy loss;

    // One fixed batch on the device: pixels in [0, 1), labels in [0, 10).
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> pixel(0.0F, 1.0F);
    std::vector<float> xs(static_cast<std::size_t>(batch * 784));
    for (float& v : xs) v = pixel(rng);
    std::vector<std::int32_t> ys(static_cast<std::size_t>(batch));
    for (auto& y : ys) y = static_cast<std::int32_t>(rng() % 10);
    Rows r{Buffer(xs.size() * sizeof(float), device), Buffer(ys.size() * 4, device),
           Buffer(static_cast<std::size_t>(batch * 10) * sizeof(float), device)};
    copy_bytes(r.x.data(), device, xs.data(), Device::cpu(), r.x.bytes());
    copy_bytes(r.labels.data(), device, ys.data(), Device::cpu(), r.labels.bytes());
    const nn::Matrix x{r.x.as<float>(), batch, 784, device};
    nn::Matrix g{r.grad.as<float>(), batch, 10, device};
    const auto* labels = r.labels.as<std::int32_t>();

    // As Trainer::fit issues a step (no host wait anywhere in it).
    auto step = [&] {
      loss.compute(model.forward(x, s), labels, &g, s, nullptr, opt.device_loss_scale());
      model.backward(g, s);
      opt.step(model.parameters(), model.gradients(), clipper, s);
    };
    const double eager = bench::time_per_run(device, s, step, min_seconds);
    // The host's time to issue one step, without waiting for the device (a few steps, so the
    // launch queue does not fill and block the host).
    stream.synchronize();
    constexpr int kIssued = 8;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kIssued; ++i) step();
    const double issue =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kIssued;
    stream.synchronize();
    double graph = 0;
    if (device.is_cuda()) {
      try {
        graph = bench::graph_seconds_per_step(device, s, step, 16, min_seconds);
      } catch (const Error& e) {
        std::fprintf(stderr, "bench_step: the CUDA graph failed: %s\n", e.what());
      }
    }
    const double flop = static_cast<double>(batch) * flop_per_sample;
    if (json) {
      std::printf(
          "{\"bench\":\"step\",\"device\":\"%s\",\"model\":\"%s\",\"batch\":%lld,"
          "\"clip_norm\":%g,\"seconds_per_step\":%.9g,\"issue_seconds_per_step\":%.9g,"
          "\"graph_seconds_per_step\":%s,\"fraction_of_graph\":%s,\"gemm_tflops\":%.6g,"
          "\"precision\":\"%s\"}\n",
          device.str().c_str(), model_label.c_str(), static_cast<long long>(batch),
          static_cast<double>(clip), eager, issue, number_or_null(graph).c_str(),
          number_or_null(graph / eager).c_str(), flop / eager * 1e-12, precision_name.c_str());
    } else {
      std::printf("# %s, %s, batch %lld, clip %g, %s\n", describe(device).c_str(),
                  model_label.c_str(), static_cast<long long>(batch), static_cast<double>(clip),
                  precision_name.c_str());
      std::printf("eager   %9.1f us/step  (host issue %.1f us/step, %.2f TFLOP/s of GEMM FLOPs)\n",
                  eager * 1e6, issue * 1e6, flop / eager * 1e-12);
      if (graph > 0)
        std::printf("graph   %9.1f us/step  fraction_of_graph %.3f (eager pays %.2fx)\n",
                    graph * 1e6, graph / eager, eager / graph);
      else
        std::printf("fraction_of_graph: n/a (no CUDA graph on %s)\n", device.str().c_str());
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_step: %s\n", e.what());
    return 1;
  }
}
