// bench_init: He-normal (and He-uniform) initialization fill rate through cuRAND, as a fraction
// of the same-run copy roofline: an init writes 4 bytes per parameter, so
// fraction = (4 n / t) / (copy bandwidth counting read + write).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common.hpp"
#include "cutrain/cutrain.hpp"
#include "options.hpp"

using namespace cutrain;

int main(int argc, char** argv) {
  CLI::App app{"Initialization fill rate vs. the copy roofline"};
  std::string device_name = "auto";
  std::int64_t n = std::int64_t{1} << 26;
  bool json = false;
  double min_seconds = 0.2;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or auto");
  app.add_option("--n", n, "elements (a [n / 1024, 1024] weight)")->check(bench::count());
  app.add_option("--min-seconds", min_seconds, "timed seconds per measurement")
      ->check(bench::seconds());
  app.add_flag("--json", json, "JSON lines");
  if (const int rc = bench::parse(app, argc, argv); rc >= 0) return rc;
  try {
    const Device device = device_name == "auto" ? default_device() : Device::parse(device_name);
    Stream stream(device);
    ArenaLayout::Builder b;
    b.add("w", {n / 1024, 1024});
    Arena a(b.build(), device);
    const double bytes = 4.0 * static_cast<double>(a.total());
    const double copy_s = bench::copy_seconds(device, a.total() * sizeof(float), stream.native());
    const double copy_gbps = 2 * bytes / copy_s * 1e-9;
    for (const char* scheme : {"he-normal", "he-uniform"}) {
      const init::Scheme s = init::Scheme::parse(scheme);
      std::uint64_t seed = 0;
      const double t = bench::time_per_run(
          device, stream.native(), [&] { init::initialize(a, "w", s, ++seed, stream.native()); },
          min_seconds);
      const double gbps = bytes / t * 1e-9;
      if (json) {
        std::printf(
            "{\"bench\":\"init\",\"scheme\":\"%s\",\"device\":\"%s\",\"n\":%zu,"
            "\"seconds\":%.9g,\"gbps\":%.4g,\"copy_gbps\":%.4g,"
            "\"fraction_of_copy\":%.4f}\n",
            scheme, device.str().c_str(), a.total(), t, gbps, copy_gbps, gbps / copy_gbps);
      } else {
        std::printf("%-11s n=%zu  %.3f ms  %.1f GB/s written  (copy %.1f GB/s)  %.1f%% of copy\n",
                    scheme, a.total(), t * 1e3, gbps, copy_gbps, 100 * gbps / copy_gbps);
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
