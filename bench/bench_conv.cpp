// bench_conv: Conv2d forward + backward (input gradient included) at the default CNN's shapes
// (cutrain-train --model cnn), a larger one and the residual blocks', in TFLOP/s, next to the bare
// GEMMs of the same FLOPs measured in the same run: the three GEMMs of the lowering (Note
// [convolution as one GEMM per chunk]) over the whole batch at once - W col, dY col^T, W^T dY - and
// nothing else. fraction_of_gemm = bare GEMM time / layer time: what im2col, col2im, the permutes,
// the bias and the chunking cost on top of the arithmetic. FLOPs = 6 B Ho Wo Co C kh kw.
// Then the default CNN's BatchNorm2d + ReLU pairs, forward + backward, input gradient included
// ("bench":"batchnorm2d"):
// memory-bound, so next to a copy in the same run - fraction_of_copy = the time to move its
// traffic at copy speed / its time. Its traffic, A = the activation's bytes: forward x read
// three times (sum, squared deviations, y) and y written, backward x, the ReLU's output and dy
// read twice (the sums, dx) and dx written: 11 A (Note [channel sums in lanes]).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common.hpp"
#include "cutrain/cutrain.hpp"
#include "gemm_exec.hpp"
#include "options.hpp"
#include "src/nn/backend.hpp"

using namespace cutrain;

namespace {

// The convolutions: 3x3, padding 1, batch x `batch_times`.
struct ConvShape {
  const char* name;
  std::int64_t batch_times, c, co, hw, groups = 1;
};
const ConvShape kConvShapes[] = {{"conv1 1-32 28x28", 1, 1, 32, 28},
                                 {"conv2 32-32 28x28", 1, 32, 32, 28},
                                 {"conv3 32-64 14x14", 1, 32, 64, 14},
                                 {"conv4 64-64 14x14", 1, 64, 64, 14},
                                 {"large 64-128 14x14", 2, 64, 128, 14},
                                 // the residual blocks' (--residual-blocks) after each pool
                                 {"res1 32-32 14x14", 1, 32, 32, 14},
                                 {"res2 64-64 7x7", 1, 64, 64, 7},
                                 // MobileNet's depthwise 3x3 and a ResNeXt-like grouped one
                                 {"dw 64 14x14", 1, 64, 64, 14, 64},
                                 {"g8 64-64 14x14", 1, 64, 64, 14, 8}};
// The BatchNorm2d + ReLU pairs.
struct BnShape {
  const char* name;
  std::int64_t c, hw;
};
const BnShape kBnShapes[] = {{"bn+relu 32 28x28", 32, 28}, {"bn+relu 64 14x14", 64, 14}};

// --shape's values: the shapes' first words (the two pairs share theirs).
std::vector<std::string> shape_words() {
  std::vector<std::string> words;
  auto add = [&](const std::string& name) {
    const std::string w = name.substr(0, name.find(' '));
    if (std::find(words.begin(), words.end(), w) == words.end()) words.push_back(w);
  };
  for (const ConvShape& s : kConvShapes) add(s.name);
  for (const BnShape& s : kBnShapes) add(s.name);
  return words;
}

// The table's shapes that the run asks for: the first alone with --small, those --shape names.
template <class Shape, std::size_t N>
std::vector<Shape> chosen(const Shape (&table)[N], bool small,
                          const std::vector<std::string>& only) {
  std::vector<Shape> shapes(table, table + (small ? 1 : N));
  std::erase_if(shapes, [&](const Shape& s) { return !bench::named(s.name, only); });
  return shapes;
}

void bench_batchnorm(Device device, NativeStream stream, std::int64_t batch,
                     const std::vector<BnShape>& shapes, double min_seconds, bool json,
                     const std::string& precision_name) {
  if (shapes.empty()) return;
  if (!json)
    std::printf("# BatchNorm2d + ReLU\n%-20s %6s %10s %10s %9s\n", "shape", "batch", "us/step",
                "GB/s", "of copy");
  for (const BnShape& s : shapes) {
    const std::int64_t f = s.c * s.hw * s.hw;
    // A model starts from flat rows: Unflatten (a copy) first, then the pair, whose input
    // gradient backward computes (Unflatten's, the model's input gradient, is not asked for).
    // The Unflatten's forward alone, timed in the same run, is taken off.
    nn::Sequential m(f), unflatten(f);
    m.emplace<nn::Unflatten>(1, Shape{s.c, s.hw, s.hw}).emplace<nn::BatchNorm2d>(s.c);
    m.emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    unflatten.emplace<nn::Unflatten>(1, Shape{s.c, s.hw, s.hw});
    for (nn::Sequential* model : {&m, &unflatten}) {
      model->build(device, 1);
      model->set_precision(parse_precision(precision_name));
    }
    const auto bytes = static_cast<std::size_t>(batch * f) * sizeof(float);
    Buffer xb(bytes, device), dyb(bytes, device);
    xb.zero();
    dyb.zero();
    nn::Matrix x{xb.as<float>(), batch, f, device}, dy{dyb.as<float>(), batch, f, device};
    const double model_s = bench::time_per_run(
        device, stream,
        [&] {
          m.forward(x, stream);
          m.backward(dy, stream, nullptr);
        },
        min_seconds);
    const double unflatten_s = bench::time_per_run(
        device, stream, [&] { unflatten.forward(x, stream); }, min_seconds);
    const double layer_s = model_s - unflatten_s;
    const double copy_s = bench::copy_seconds(device, bytes, stream);  // moves 2 A
    constexpr double kPasses = 11.0;  // the activation's reads and writes (above)
    const double traffic = kPasses * static_cast<double>(bytes);
    const double fraction = copy_s * (kPasses / 2) / layer_s;
    if (json)
      std::printf(
          "{\"bench\":\"batchnorm2d\",\"impl\":\"cutrain\",\"device\":\"%s\",\"shape\":"
          "\"%s\",\"batch\":%lld,\"seconds_per_step\":%.9g,\"gb_per_s\":%.4g,"
          "\"fraction_of_copy\":%.4f,\"precision\":\"%s\"}\n",
          device.str().c_str(), s.name, static_cast<long long>(batch), layer_s,
          traffic / layer_s * 1e-9, fraction, precision_name.c_str());
    else
      std::printf("%-20s %6lld %10.1f %10.1f %8.1f%%\n", s.name, static_cast<long long>(batch),
                  layer_s * 1e6, traffic / layer_s * 1e-9, 100 * fraction);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Conv2d forward+backward vs. the bare GEMMs of the same FLOPs"};
  std::string device_name = "auto";
  bool json = false;
  std::int64_t batch = 128;
  double min_seconds = 0.2;
  bool small = false;
  std::vector<std::string> only;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto");
  std::string precision_name = "fp32";
  app.add_option("--precision", precision_name,
                 "fp32; tf32: the layers and the bare GEMMs on TF32 tensor cores (CUDA); bf16 / "
                 "fp16: the model in 16 bits (its rounding passes included), the GEMMs on 16-bit "
                 "operands (CUDA: 16-bit tensor cores)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  app.add_option("--batch", batch, "batch size of the default CNN's shapes (the large one: 2x)")
      ->check(bench::count());
  app.add_option("--min-seconds", min_seconds, "timed seconds per measurement")
      ->check(bench::seconds());
  app.add_flag("--small", small, "only the first shape (smoke tests)");
  app.add_option("--shape", only, "only these shapes, by the first word of their names")
      ->check(bench::one_of(shape_words()));
  app.add_flag("--json", json, "one JSON object per line per measurement");
  if (const int rc = bench::parse(app, argc, argv); rc >= 0) return rc;
  try {
    const Device device = device_name == "auto" ? default_device() : Device::parse(device_name);
    require_usable(device);
    Stream stream(device);
    const Precision precision = parse_precision(precision_name);
    CUTRAIN_CHECK(precision != Precision::kTf32 || device.is_cuda(),
                  "--precision tf32 needs a CUDA device");
    const bench::GemmExec gemm_exec(device, stream.native(), precision);
    const nn::backend::Exec& exec = gemm_exec.get();
    const std::vector<ConvShape> shapes = chosen(kConvShapes, small, only);
    if (!json)
      std::printf(
          "# %s, 3x3 kernels, padding 1 (dw: depthwise, gN: N groups)\n%-20s %6s %10s %10s %10s "
          "%9s\n",
          describe(device).c_str(), "shape", "batch", "us/step", "TFLOP/s", "GEMM TF/s", "of GEMM");
    for (const ConvShape& s : shapes) {
      const std::int64_t batch_s = s.batch_times * batch;
      const std::int64_t in = s.c * s.hw * s.hw, out = s.co * s.hw * s.hw;
      nn::Sequential m(in);
      m.emplace<nn::Unflatten>(1, Shape{s.c, s.hw, s.hw});
      m.emplace<nn::Conv2d>(s.c, s.co, 3, 1, 1, 1, true, s.groups);
      m.build(device, 1);
      m.set_precision(precision);
      Buffer xb(static_cast<std::size_t>(batch_s * in) * sizeof(float), device);
      Buffer dyb(static_cast<std::size_t>(batch_s * out) * sizeof(float), device);
      Buffer dxb(xb.bytes(), device);
      xb.zero();
      dyb.zero();
      nn::Matrix x{xb.as<float>(), batch_s, in, device}, dy{dyb.as<float>(), batch_s, out, device};
      nn::Matrix dx{dxb.as<float>(), batch_s, in, device};
      const double layer_s = bench::time_per_run(
          device, stream.native(),
          [&] {
            m.forward(x, stream.native());
            m.backward(dy, stream.native(), &dx);
          },
          min_seconds);
      // The bare GEMMs: M = Co, N = B P, K = C 9 over the whole batch (C / groups: the grouped
      // convolution's FLOPs as one dense GEMM).
      const std::int64_t k = s.c / s.groups * 9, n = batch_s * s.hw * s.hw;
      Buffer col(static_cast<std::size_t>(k * n) * sizeof(float), device);
      Buffer y(static_cast<std::size_t>(s.co * n) * sizeof(float), device);
      col.zero();
      y.zero();
      float* w = m.parameters().data();
      float* dw = m.gradients().data();
      const double gemm_s = bench::time_per_run(
          device, stream.native(),
          [&] {
            nn::backend::gemm(exec, false, false, s.co, n, k, 1, w, k, col.as<float>(), n, 0,
                              y.as<float>(), n);
            nn::backend::gemm(exec, false, true, s.co, k, n, 1, y.as<float>(), n, col.as<float>(),
                              n, 0, dw, k);
            nn::backend::gemm(exec, true, false, k, n, s.co, 1, w, k, y.as<float>(), n, 0,
                              col.as<float>(), n);
          },
          min_seconds);
      const double flops = 6.0 * static_cast<double>(s.co * k * n);
      // Note [convolutions on cuDNN]: which path the layer ran ("cpu" on the CPU).
      std::string algorithm = static_cast<nn::Conv2d&>(m.layer(1)).gpu_algorithm();
      if (algorithm.empty()) algorithm = device.str();
      for (char& ch : algorithm)
        if (ch == '"' || ch == '\\') ch = '\'';
      if (json)
        std::printf(
            "{\"bench\":\"conv\",\"impl\":\"cutrain\",\"device\":\"%s\",\"shape\":\"%s\","
            "\"batch\":%lld,\"in_channels\":%lld,\"out_channels\":%lld,\"groups\":%lld,"
            "\"size\":%lld,"
            "\"seconds_per_step\":%.9g,\"tflops\":%.4g,\"gemm_tflops\":%.4g,"
            "\"fraction_of_gemm\":%.4f,\"precision\":\"%s\",\"algorithm\":\"%s\"}\n",
            device.str().c_str(), s.name, static_cast<long long>(batch_s),
            static_cast<long long>(s.c), static_cast<long long>(s.co),
            static_cast<long long>(s.groups), static_cast<long long>(s.hw), layer_s,
            flops / layer_s * 1e-12, flops / gemm_s * 1e-12, gemm_s / layer_s,
            precision_name.c_str(), algorithm.c_str());
      else
        std::printf("%-20s %6lld %10.1f %10.3f %10.3f %8.1f%%\n", s.name,
                    static_cast<long long>(batch_s), layer_s * 1e6, flops / layer_s * 1e-12,
                    flops / gemm_s * 1e-12, 100 * gemm_s / layer_s);
      std::fflush(stdout);
    }
    bench_batchnorm(device, stream.native(), batch, chosen(kBnShapes, small, only), min_seconds,
                    json, precision_name);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_conv: %s\n", e.what());
    return 2;
  }
}
