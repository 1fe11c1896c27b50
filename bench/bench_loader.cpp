// bench_loader: shuffled Fashion-MNIST-shaped batches (60000 x 784, labels) streamed to the
// device. Reports batches/s of the pipelined loader against a synchronous baseline (gather +
// copy on the caller's thread, same run), and - with an MLP forward/backward as the compute
// stand-in - how much of the loading time is hidden behind compute:
//   hidden = 1 - (t_pipelined - t_compute) / t_load, clamped to [0, 1];
// and the resident loader (the dataset on the device, batches gathered there) in the same run.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "cutrain/cutrain.hpp"
#include "options.hpp"

using namespace cutrain;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Streaming loader throughput and overlap"};
  std::string device_name = "auto";
  std::int64_t batch = 256, rows = 60000;
  bool json = false;
  double min_seconds = 0;  // accepted for a uniform bench command line; one epoch is timed
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto");
  app.add_option("--min-seconds", min_seconds, "ignored (each phase times one epoch)")
      ->check(bench::seconds());
  app.add_option("--batch", batch, "batch size")->check(bench::count());
  app.add_option("--rows", rows, "dataset rows")->check(bench::count());
  app.add_flag("--json", json, "JSON lines");
  if (const int rc = bench::parse(app, argc, argv); rc >= 0) return rc;
  try {
    const Device device = device_name == "auto" ? default_device() : Device::parse(device_name);
    data::Dataset d;
    d.rows = rows;
    d.features = 784;
    d.classes = 10;
    d.x.resize(static_cast<std::size_t>(rows * 784));
    for (std::size_t i = 0; i < d.x.size(); ++i) d.x[i] = static_cast<float>(i % 251) / 251.0F;
    for (std::int64_t r = 0; r < rows; ++r) d.labels.push_back(static_cast<std::int32_t>(r % 10));
    Stream compute(device);
    data::Loader loader(d, device, {.batch_size = batch, .seed = 1, .prefetch = 3});
    const std::int64_t nb = loader.batches_per_epoch();

    // 1. The pipelined loader alone.
    loader.start_epoch(0);
    auto t0 = Clock::now();
    while (loader.next(compute.native())) {
    }
    compute.synchronize();
    const double t_load = seconds_since(t0);

    // 2. Synchronous baseline: gather into pinned memory and copy on the caller's thread.
    PinnedBuffer staging(static_cast<std::size_t>(batch * 784) * sizeof(float));
    Buffer dev(staging.bytes(), device);
    const auto order = data::permutation(rows, 1, 1);
    t0 = Clock::now();
    for (std::int64_t k = 0; k < nb; ++k) {
      const std::int64_t begin = k * batch, n = std::min(batch, rows - begin);
      for (std::int64_t r = 0; r < n; ++r)
        std::memcpy(staging.as<float>() + r * 784,
                    d.x.data() + order[static_cast<std::size_t>(begin + r)] * 784, 784 * 4);
      copy_bytes(dev.data(), device, staging.data(), Device::cpu(),
                 static_cast<std::size_t>(n * 784) * 4, compute.native());
      compute.synchronize();
    }
    const double t_sync = seconds_since(t0);

    // 3. Compute stand-in alone (one resident batch), then loader + compute pipelined.
    nn::Sequential mlp(784);
    mlp.emplace<nn::Linear>(784, 256).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    mlp.emplace<nn::Linear>(256, 128).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    mlp.emplace<nn::Linear>(128, 10);
    mlp.build(device, 1);
    optim::Adam opt(mlp.parameters(), {});
    nn::SoftmaxCrossEntropy loss;
    Buffer grad_buf(static_cast<std::size_t>(batch * 10) * sizeof(float), device);
    Buffer labels_buf(static_cast<std::size_t>(batch) * sizeof(std::int32_t), device);
    labels_buf.zero();
    auto train_step = [&](const nn::Matrix& x, const std::int32_t* labels) {
      nn::Matrix g{grad_buf.as<float>(), x.rows, 10, device};
      loss.compute(mlp.forward(x, compute.native()), labels, &g, compute.native());
      mlp.backward(g, compute.native());
      opt.step(mlp.parameters(), mlp.gradients(), {}, compute.native());
    };
    nn::Matrix resident{dev.as<float>(), batch, 784, device};
    train_step(resident, labels_buf.as<std::int32_t>());
    compute.synchronize();
    t0 = Clock::now();
    for (std::int64_t k = 0; k < nb; ++k) train_step(resident, labels_buf.as<std::int32_t>());
    compute.synchronize();
    const double t_compute = seconds_since(t0);
    loader.start_epoch(2);
    t0 = Clock::now();
    while (auto b = loader.next(compute.native())) train_step(b->x, b->labels);
    compute.synchronize();
    const double t_both = seconds_since(t0);
    const double hidden = std::clamp(1.0 - (t_both - t_compute) / t_load, 0.0, 1.0);

    // 4. The resident loader (Note [resident datasets]): the dataset uploaded once, each batch
    //    gathered on the device - alone, and with the same compute.
    data::Loader res(d, device, {.batch_size = batch, .seed = 1, .resident = true});
    res.start_epoch(0);
    t0 = Clock::now();
    while (res.next(compute.native())) {
    }
    compute.synchronize();
    const double t_res_load = seconds_since(t0);
    res.start_epoch(2);
    t0 = Clock::now();
    while (auto b = res.next(compute.native())) train_step(b->x, b->labels);
    compute.synchronize();
    const double t_res_both = seconds_since(t0);
    if (json) {
      std::printf(
          "{\"bench\":\"loader\",\"device\":\"%s\",\"batch\":%lld,\"batches\":%lld,"
          "\"pipelined_batches_per_s\":%.1f,\"sync_batches_per_s\":%.1f,"
          "\"compute_s\":%.4f,\"pipelined_with_compute_s\":%.4f,\"hidden_fraction\":%.3f,"
          "\"resident_batches_per_s\":%.1f,\"resident_with_compute_s\":%.4f}\n",
          device.str().c_str(), static_cast<long long>(batch), static_cast<long long>(nb),
          nb / t_load, nb / t_sync, t_compute, t_both, hidden, nb / t_res_load, t_res_both);
    } else {
      std::printf("# %s, %lld batches of %lld\n", describe(device).c_str(),
                  static_cast<long long>(nb), static_cast<long long>(batch));
      std::printf("loader alone:      %8.1f batches/s (synchronous gather+copy: %.1f)\n",
                  nb / t_load, nb / t_sync);
      std::printf("compute alone:     %8.3f s/epoch\nloader + compute:  %8.3f s/epoch\n", t_compute,
                  t_both);
      std::printf("loading hidden behind compute: %.1f%%\n", 100 * hidden);
      std::printf("resident loader:   %8.1f batches/s; with compute %.3f s/epoch\n",
                  nb / t_res_load, t_res_both);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
