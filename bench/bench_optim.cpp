// bench_optim: the fused optimizer step against the memory-copy roofline, same device, same run.
//
// bytes_per_step counts the fewest bytes a step must move in fp32 (each array read once, each
// written array written once): SGD 12 B/param (20 with momentum), AdaGrad 20, RMSProp 20 (+8
// centered, +8 momentum), Adam/AdamW 28, AMSGrad 36; --clip adds the norm's read of g (+4);
// --precision bf16|fp16 the step's write of the 16-bit compute copy (+2: Note [16-bit compute
// copy], Optimizer::enable_compute_copy).
// fraction_of_copy = achieved bandwidth over that of a device copy moving the same number of
// bytes (read + write) measured just before.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "cutrain/cutrain.hpp"
#include "options.hpp"
#if CUTRAIN_BENCH_WITH_CUDA
#include <cuda_runtime_api.h>

#include <type_traits>

#include "kernels/optim/optim.hpp"  // kernels::fused_clip_step_launches
#endif

using namespace cutrain;

namespace {

struct Variant {
  std::string name;
  int arrays_read_written;  // params, state arrays (read + written)
  std::function<std::unique_ptr<optim::Optimizer>(const Arena&)> make;
};

std::vector<Variant> variants() {
  return {
      {"sgd", 1,
       [](const Arena& p) { return std::make_unique<optim::Sgd>(p, optim::SgdOptions{}); }},
      {"sgd_momentum", 2,
       [](const Arena& p) {
         return std::make_unique<optim::Sgd>(p, optim::SgdOptions{.momentum = 0.9F});
       }},
      {"adagrad", 2,
       [](const Arena& p) { return std::make_unique<optim::Adagrad>(p, optim::AdagradOptions{}); }},
      {"rmsprop", 2,
       [](const Arena& p) { return std::make_unique<optim::Rmsprop>(p, optim::RmspropOptions{}); }},
      {"rmsprop_centered_momentum", 4,
       [](const Arena& p) {
         return std::make_unique<optim::Rmsprop>(
             p, optim::RmspropOptions{.momentum = 0.9F, .centered = true});
       }},
      {"adam", 3,
       [](const Arena& p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions{}); }},
      {"adamw", 3,
       [](const Arena& p) { return std::make_unique<optim::AdamW>(p, optim::AdamW::defaults()); }},
      {"amsgrad", 4,
       [](const Arena& p) {
         return std::make_unique<optim::Adam>(p, optim::AdamOptions{.amsgrad = true});
       }},
  };
}

// Model-shaped parameter sets: (name, shape, decay group) lists.
// gpt2-small: GPT-2 small's 148 tensors, 124,439,808 parameters (tied output embedding).
// mlp-1m: 10 Linear(316, 316) layers, 20 tensors, 1,001,720 parameters.
std::shared_ptr<const ArenaLayout> model_layout(const std::string& model) {
  ArenaLayout::Builder b;
  auto add = [&](const std::string& name, Shape shape) {
    b.add(name, std::move(shape), name.ends_with("bias") || name.find("ln") != std::string::npos);
  };
  if (model == "gpt2-small") {
    add("wte.weight", {50257, 768});
    add("wpe.weight", {1024, 768});
    for (int l = 0; l < 12; ++l) {
      const std::string h = "h." + std::to_string(l) + ".";
      add(h + "ln_1.weight", {768});
      add(h + "ln_1.bias", {768});
      add(h + "attn.c_attn.weight", {768, 2304});
      add(h + "attn.c_attn.bias", {2304});
      add(h + "attn.c_proj.weight", {768, 768});
      add(h + "attn.c_proj.bias", {768});
      add(h + "ln_2.weight", {768});
      add(h + "ln_2.bias", {768});
      add(h + "mlp.c_fc.weight", {768, 3072});
      add(h + "mlp.c_fc.bias", {3072});
      add(h + "mlp.c_proj.weight", {3072, 768});
      add(h + "mlp.c_proj.bias", {768});
    }
    add("ln_f.weight", {768});
    add("ln_f.bias", {768});
  } else if (model == "mlp-1m") {
    for (int l = 0; l < 10; ++l) {
      add("layers." + std::to_string(2 * l) + ".weight", {316, 316});
      add("layers." + std::to_string(2 * l) + ".bias", {316});
    }
  } else {
    CUTRAIN_FAIL("unknown --model '", model, "': expected gpt2-small or mlp-1m");
  }
  return b.build();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fused optimizer step vs. the memory-copy roofline"};
  std::string device_name = "auto";
  std::string only;
  std::vector<std::size_t> sizes;
  bool json = false;
  bool clip = false;
  std::string model;
  double min_seconds = 0.2;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto");
  app.add_option("--optimizer", only,
                 "one of: sgd sgd_momentum adagrad rmsprop "
                 "rmsprop_centered_momentum adam adamw amsgrad");
  app.add_option("--n", sizes, "parameter counts (default 2^10 .. 2^26 by 4x; CPU to 2^24)")
      ->check(bench::count());
  app.add_option("--min-seconds", min_seconds, "timed seconds per measurement")
      ->check(bench::seconds());
  app.add_flag("--json", json, "one JSON object per line per measurement");
  app.add_option("--model", model,
                 "a model-shaped parameter set instead of --n: gpt2-small "
                 "(124M in 148 tensors) or mlp-1m (1M in 20 tensors)");
  bool graph = false;
  app.add_flag("--graph", graph,
               "CUDA: also time each step replayed from a CUDA graph of 16 steps (the device's "
               "time without launch overhead), as extra rows with launch = graph");
  std::string precision = "fp32";
  app.add_option("--precision", precision,
                 "fp32, or bf16 / fp16: each step also writes the parameters rounded to 16 bits "
                 "(the compute copy of mixed-precision training, +2 B/param)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_flag("--clip", clip,
               "clip by global L2 norm before each step (+4 B/param: one "
               "read of the gradients for the norm)");
  if (const int rc = bench::parse(app, argc, argv); rc >= 0) return rc;

  try {
    const Device device = device_name == "auto" ? default_device() : Device::parse(device_name);
    require_usable(device);
    CUTRAIN_CHECK(!graph || (device.is_cuda() && CUTRAIN_BENCH_WITH_CUDA), "--graph needs CUDA");
    if (!model.empty()) sizes = {0};  // one measurement on the model's layout
    if (sizes.empty()) {
      const int max_log = device.is_cuda() ? 26 : 24;
      for (int k = 10; k <= max_log; k += 2) sizes.push_back(std::size_t{1} << k);
    }
    std::vector<Variant> vs = variants();
    if (!only.empty()) {
      std::erase_if(vs, [&](const Variant& v) { return v.name != only; });
      CUTRAIN_CHECK(!vs.empty(), "unknown optimizer '", only, "'");
    }
    Stream stream(device);
    if (!json)
      std::printf("# %s\n%-26s %12s %12s %10s %10s %9s\n", describe(device).c_str(), "optimizer",
                  "n", "us/step", "GB/s", "copy GB/s", "of copy");
    for (const std::size_t n : sizes) {
      std::shared_ptr<const ArenaLayout> layout;
      if (model.empty()) {
        ArenaLayout::Builder b;
        b.add("p", {static_cast<std::int64_t>(n)});
        layout = b.build();
      } else {
        layout = model_layout(model);
      }
      const std::size_t count = layout->parameter_count();
      Arena params(layout, device);
      Arena grads = params.like();
      std::vector<float> host(params.total());
      for (std::size_t i = 0; i < host.size(); ++i) host[i] = std::sin(0.001F * i) * 1e-2F;
      grads.from_host(host);
      // With --clip on CUDA, two rows per optimizer: step(params, grads, clipper) - one launch
      // where the arena fits (Note [clip and step in one launch]) - and clipper.run() + step().
      const int paths = clip && device.is_cuda() ? 2 : 1;
      for (int path = 0; path < paths * static_cast<int>(vs.size()); ++path) {
        const Variant& v = vs[static_cast<std::size_t>(path / paths)];
        const bool one_call = clip && path % paths == 0;
        auto opt = v.make(params);
        const Precision p = parse_precision(precision);
        if (is_half(p)) opt->enable_compute_copy(params, p);
        GradClipper clipper(device, 1.0F);
        const auto step = [&] {
          if (one_call) {
            opt->step(params, grads, clipper, stream.native());
          } else {
            const optim::StepGuard guard =
                clip ? clipper.run(grads, stream.native()) : optim::StepGuard{};
            opt->step(params, grads, guard, stream.native());
          }
        };
        // Did the one-launch kernel run? (Counted by the library; the CPU always runs two loops.)
        bool fused = false;
#if CUTRAIN_BENCH_WITH_CUDA
        if (one_call && device.is_cuda()) {
          const std::int64_t before = kernels::fused_clip_step_launches();
          step();
          fused = kernels::fused_clip_step_launches() > before;
        }
#endif
        // The fewest bytes the path must move: the fused step reads each gradient once.
        const std::size_t bytes =
            ((2 * v.arrays_read_written + 1 + (clip && !fused ? 1 : 0)) * sizeof(float) +
             (is_half(p) ? sizeof(std::uint16_t) : 0)) *
            count;
        const double copy_s = bench::copy_seconds(device, bytes / 2, stream.native());
        const char* clip_path = !clip ? "" : (fused ? "fused" : "two-pass");
        auto report = [&](double s, const char* launch) {
          const double gbps = bytes / s * 1e-9;
          const double copy_gbps = bytes / copy_s * 1e-9;
          if (json) {
            std::printf(
                "{\"bench\":\"optim\",\"optimizer\":\"%s%s\",\"device\":\"%s\",\"n\":%zu,"
                "\"tensors\":%zu,\"model\":\"%s\",\"launch\":\"%s\",\"seconds_per_step\":%.9g,"
                "\"bytes_per_step\":%zu,\"gbps\":%.4g,\"copy_gbps\":%.4g,"
                "\"fraction_of_copy\":%.4f,\"clip_path\":\"%s\",\"precision\":\"%s\"}\n",
                v.name.c_str(), clip ? "+clip" : "", device.str().c_str(), count, layout->size(),
                model.c_str(), launch, s, bytes, gbps, copy_gbps, gbps / copy_gbps, clip_path,
                precision.c_str());
          } else {
            std::printf("%-21s%5s %12zu %12.2f %10.1f %10.1f %8.1f%%%s%s\n", v.name.c_str(),
                        clip ? "+clip" : "", count, s * 1e6, gbps, copy_gbps,
                        100 * gbps / copy_gbps, std::string(launch) == "graph" ? " (graph)" : "",
                        fused ? " (one launch)" : "");
          }
          std::fflush(stdout);
        };
        report(bench::time_per_run(device, stream.native(), step, min_seconds), "stream");
#if CUTRAIN_BENCH_WITH_CUDA
        if (graph) {
          try {
            report(bench::graph_seconds_per_step(device, stream.native(), step, 16, min_seconds),
                   "graph");
          } catch (const Error& e) {  // reported, and the other measurements go on
            std::fprintf(stderr, "bench_optim --graph (%s): %s\n", v.name.c_str(), e.what());
          }
        }
#endif
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
