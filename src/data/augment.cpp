// Note [augmentation on the device] (kernels/data/augment.cuh): option checks and dispatch.
#include "src/data/augment.hpp"

#include "cutrain/data/augment.hpp"
#include "cutrain/error.hpp"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/data/data.hpp"
#endif

namespace cutrain::data {

namespace {

void check_image(const Shape& image, std::int64_t features, const char* who) {
  CUTRAIN_CHECK(image.size() == 3, who, ": the image shape ", shape_str(image),
                " must be {C, H, W}");
  for (const std::int64_t d : image)
    CUTRAIN_CHECK(d > 0, who, ": the image shape ", shape_str(image), " must have positive sizes");
  CUTRAIN_CHECK(numel(image) == features, who, ": the image shape ", shape_str(image), " holds ",
                numel(image), " values but a sample has ", features, " features");
}

}  // namespace

void check_augment(const Augment& a, std::int64_t features) {
  if (!a.enabled()) return;
  check_image(a.image, features, "augmentation");
  CUTRAIN_CHECK(a.shift >= 0 && a.shift < a.image[1] && a.shift < a.image[2],
                "augmentation: shift = ", a.shift, " is invalid for ", a.image[1], "x", a.image[2],
                " images; valid: 0 <= shift < height and width");
}

void check_eval_augment(const EvalAugment& a, std::int64_t features, const char* who) {
  if (a.enabled()) check_image(a.image, features, who);
}

std::uint64_t augment_key(std::uint64_t seed) {
  // Its own stream, apart from initialization's and dropout's (which mix the seed with tensor and
  // layer indices the same way): the tag is "augment" in ASCII. (The golden-ratio term was once
  // rank + 1's, and keeps one process's draws as they were.)
  constexpr std::uint64_t kTag = 0x61756720'6D656E74ULL;
  return rules::mix64(seed ^ kTag ^ 0x9E3779B97F4A7C15ULL);
}

namespace detail {

void augment_rows(Device device, const rules::AugmentArgs& a, const float* x, std::int64_t rows,
                  float* y, [[maybe_unused]] NativeStream stream) {
  if (rows == 0) return;
  const std::int64_t features = a.channels * a.height * a.width;
  if (device.is_cpu()) {
    const std::int64_t epoch = *a.epoch;
    const std::int64_t slot = *a.slot;
    cpu::parallel_rows(static_cast<std::size_t>(rows), [&](std::size_t r) {
      const auto row = static_cast<std::int64_t>(r);
      const rules::AugmentDraw d = rules::augment_draw(a, epoch, slot, row);
      const float* in = x + row * features;
      float* out = y + row * features;
      for (std::int64_t e = 0; e < features; ++e) out[e] = rules::augment_value(a, d, in, e);
    });
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::launch_augment_rows(a, x, rows, y, stream));
  }
}

void mirror_rows(Device device, const float* x, std::int64_t rows, std::int64_t features,
                 std::int64_t width, float* y, [[maybe_unused]] NativeStream stream) {
  const auto n = static_cast<std::size_t>(rows * features);
  if (n == 0) return;
  if (device.is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t e) {
      y[e] = x[rules::mirror_source(static_cast<std::int64_t>(e), width)];
    });
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::launch_mirror_rows(x, n, width, y, stream));
  }
}

}  // namespace detail
}  // namespace cutrain::data
