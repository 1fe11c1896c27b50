// bench_layers: Linear forward + backward at training shapes, in TFLOP/s, next to the bare
// GEMMs of the same shapes (the forward GEMM and the two backward GEMMs, nothing else) measured
// in the same run: fraction_of_gemm = bare GEMM time / layer time. The layer adds the bias add
// (on CUDA inside cuBLASLt's GEMM, or as its own pass with CUTRAIN_CUBLASLT=0: both are
// measured) and the bias-gradient column sums. Then ReLU and GELU forward + backward against the
// same-run copy of the bytes they must move (fraction_of_copy).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "common.hpp"
#include "cutrain/cutrain.hpp"
#include "gemm_exec.hpp"
#include "options.hpp"
#include "src/nn/backend.hpp"

using namespace cutrain;

int main(int argc, char** argv) {
  CLI::App app{"Dense layer forward+backward vs. bare SGEMM"};
  std::string device_name = "auto";
  bool json = false;
  std::int64_t batch = 256;
  double min_seconds = 0.2;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto");
  std::string precision_name = "fp32";
  app.add_option("--precision", precision_name,
                 "fp32; tf32: the layers and the bare GEMMs on TF32 tensor cores (CUDA); bf16 / "
                 "fp16: the model in 16 bits (its rounding passes included), the GEMMs on 16-bit "
                 "operands (CUDA: 16-bit tensor cores)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  app.add_option("--batch", batch, "batch size")->check(bench::count());
  app.add_option("--min-seconds", min_seconds, "timed seconds per measurement")
      ->check(bench::seconds());
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
    if (!json)
      std::printf("# %s, batch %lld\n%-18s %10s %10s %10s %9s\n", describe(device).c_str(),
                  static_cast<long long>(batch), "shape", "us/step", "TFLOP/s", "GEMM TF/s",
                  "of GEMM");
    const std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {
        {784, 1024}, {1024, 1024}, {1024, 10}, {4096, 4096}};
    // On CUDA each shape twice: the bias in cuBLASLt's epilogue (the default, Note [bias in the
    // GEMM epilogue]) and the two-pass path CUTRAIN_CUBLASLT=0 selects, side by side.
    std::vector<std::pair<std::pair<std::int64_t, std::int64_t>, bool>> runs;
    for (const auto& shape : shapes) {
      runs.push_back({shape, device.is_cuda()});
      if (device.is_cuda()) runs.push_back({shape, false});
    }
    for (const auto& [shape, fused] : runs) {
      const auto [in, out] = shape;
      nn::Sequential m(in);
      m.emplace<nn::Linear>(in, out);
      setenv("CUTRAIN_CUBLASLT", fused ? "1" : "0", 1);  // read by build()
      m.build(device, 1);
      m.set_precision(precision);
      Buffer xb(static_cast<std::size_t>(batch * in) * sizeof(float), device);
      Buffer dyb(static_cast<std::size_t>(batch * out) * sizeof(float), device);
      Buffer dxb(xb.bytes(), device);
      xb.zero();
      dyb.zero();
      nn::Matrix x{xb.as<float>(), batch, in, device}, dy{dyb.as<float>(), batch, out, device};
      nn::Matrix dx{dxb.as<float>(), batch, in, device};
      const double layer_s = bench::time_per_run(
          device, stream.native(),
          [&] {
            m.forward(x, stream.native());
            m.backward(dy, stream.native(), &dx);
          },
          min_seconds);
      float* w = m.parameters().data();
      float* dw = m.gradients().data();
      Buffer yb(dyb.bytes(), device);
      const double gemm_s = bench::time_per_run(
          device, stream.native(),
          [&] {
            nn::backend::gemm(exec, false, true, batch, out, in, 1, x.data, in, w, in, 0,
                              yb.as<float>(), out);
            nn::backend::gemm(exec, false, false, batch, in, out, 1, dy.data, out, w, in, 0,
                              dx.data, in);
            nn::backend::gemm(exec, true, false, out, in, batch, 1, dy.data, out, x.data, in, 0, dw,
                              in);
          },
          min_seconds);
      const double flops = 6.0 * static_cast<double>(batch * in * out);
      const std::string label = std::to_string(in) + "x" + std::to_string(out) +
                                (device.is_cuda() ? (fused ? " fused" : " 2-pass") : "") +
                                (precision == Precision::kFp32 ? "" : " " + precision_name);
      if (json) {
        std::printf(
            "{\"bench\":\"layers\",\"layer\":\"linear\",\"device\":\"%s\",\"batch\":%lld,"
            "\"in\":%lld,\"out\":%lld,\"seconds_per_step\":%.9g,\"tflops\":%.4g,"
            "\"gemm_tflops\":%.4g,\"fraction_of_gemm\":%.4f,\"bias_epilogue\":%s,"
            "\"precision\":\"%s\"}\n",
            device.str().c_str(), static_cast<long long>(batch), static_cast<long long>(in),
            static_cast<long long>(out), layer_s, flops / layer_s * 1e-12, flops / gemm_s * 1e-12,
            gemm_s / layer_s, fused ? "true" : "false", precision_name.c_str());
      } else {
        std::printf("%-18s %10.1f %10.3f %10.3f %8.1f%%\n", label.c_str(), layer_s * 1e6,
                    flops / layer_s * 1e-12, flops / gemm_s * 1e-12, 100 * gemm_s / layer_s);
      }
      std::fflush(stdout);
    }
    // Element-wise layers: forward + backward of one layer on a [batch, 1024] activation,
    // against the same-run copy of the fewest bytes it must move. An activation: forward reads
    // x, writes y; backward reads x or y and dy, writes dx (20 bytes per element). Dropout
    // (training, p = 0.2; its uniforms are computed in the kernel, Note [dropout from the
    // counter]): forward reads x, writes y and the mask; backward reads dy and the mask, writes
    // dx (24 bytes per element).
    const std::int64_t width = 1024;
    const auto n = static_cast<std::size_t>(batch * width);
    struct Case {
      const char* name;
      std::size_t bytes_per_element;
      std::function<void(nn::Sequential&)> add;
    };
    const Case cases[] = {
        {"relu", 20,
         [](nn::Sequential& m) { m.emplace<nn::Activation>(nn::Activation::Kind::kRelu); }},
        {"gelu", 20,
         [](nn::Sequential& m) { m.emplace<nn::Activation>(nn::Activation::Kind::kGelu); }},
        {"dropout", 24, [](nn::Sequential& m) { m.emplace<nn::Dropout>(0.2F); }},
    };
    for (const Case& c : cases) {
      // copy_seconds(bytes) moves 2 x bytes (read + write).
      const double copy_s =
          bench::copy_seconds(device, n * c.bytes_per_element / 2, stream.native());
      nn::Sequential m(width);
      c.add(m);
      m.build(device, 1);
      m.train();
      Buffer xb(n * sizeof(float), device), dyb(n * sizeof(float), device),
          dxb(n * sizeof(float), device);
      xb.zero();
      dyb.zero();
      nn::Matrix x{xb.as<float>(), batch, width, device}, dy{dyb.as<float>(), batch, width, device};
      nn::Matrix dx{dxb.as<float>(), batch, width, device};
      const double act_s = bench::time_per_run(
          device, stream.native(),
          [&] {
            m.forward(x, stream.native());
            m.backward(dy, stream.native(), &dx);
          },
          min_seconds);
      if (json) {
        std::printf(
            "{\"bench\":\"activation\",\"layer\":\"%s\",\"device\":\"%s\",\"batch\":%lld,"
            "\"width\":%lld,\"seconds_per_step\":%.9g,\"copy_seconds\":%.9g,"
            "\"fraction_of_copy\":%.4f}\n",
            c.name, device.str().c_str(), static_cast<long long>(batch),
            static_cast<long long>(width), act_s, copy_s, copy_s / act_s);
      } else {
        std::printf("%-14s %10.1f us fwd+bwd, %5.1f%% of the same-bytes copy\n",
                    (std::string(c.name) + " x1024").c_str(), act_s * 1e6, 100 * copy_s / act_s);
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
