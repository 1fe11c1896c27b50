// Dispatch and CPU twin of the global-norm reduction (kernels/clip/norm.cu).
#include "cutrain/clip.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cutrain/error.hpp"
#include "kernels/clip/norm.cuh"
#include "kernels/ops/axpy.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/clip/clip.hpp"
#include "kernels/ops/ops.hpp"
#endif

namespace cutrain {
namespace {

// The CPU reduction is deterministic whatever the thread count: a fixed partition into
// kCpuChunks contiguous chunks, each summed in a fixed order, then the chunks combined in order.
// Within a chunk, kLanes independent accumulators (element i goes to lane i % kLanes, lanes
// combined in order at the end): without them every element waits on the previous double add
// (a 4-cycle dependency chain, and g++ may not reassociate), which made the norm 3x slower than
// the whole Adam step it precedes. The lanes are what SIMD registers hold, so the loop vectorizes.
constexpr std::size_t kCpuChunks = 256;
constexpr std::size_t kLanes = 16;
constexpr std::size_t kPartialSlots = 1024;  // >= kernels::kMaxNormBlocks and kCpuChunks
#if CUTRAIN_WITH_CUDA
static_assert(kPartialSlots >= static_cast<std::size_t>(kernels::kMaxNormBlocks));
#endif

rules::NormPartial cpu_chunk_norm(const float* g, std::size_t begin, std::size_t end) {
  double sumsq[kLanes] = {};
  float maxabs[kLanes] = {};
  std::size_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    // Two simd loops, not one: with the float max and the double sum in one body g++ unrolled
    // the 16 lanes into scalar code (1.8 G elements/s); apart, each is a few AVX-512
    // instructions (8.3 G elements/s, the same bits: every lane adds the same terms in order).
#pragma omp simd
    for (std::size_t j = 0; j < kLanes; ++j) {
      const float v = g[i + j];
      sumsq[j] += static_cast<double>(v) * static_cast<double>(v);
    }
    // A NaN may be dropped here (unlike fmaxf's order): sumsq is what flags non-finite
    // gradients (rules::finish), and maxabs is read only when everything is finite.
#pragma omp simd
    for (std::size_t j = 0; j < kLanes; ++j) {
      const float a = std::fabs(g[i + j]);
      maxabs[j] = maxabs[j] < a ? a : maxabs[j];
    }
  }
  rules::NormPartial acc{0.0, 0.0F, 0.0F};
  for (std::size_t j = 0; j < kLanes; ++j) acc = rules::combine(acc, {sumsq[j], maxabs[j], 0.0F});
  for (; i < end; ++i) rules::accumulate(acc, g[i]);
  return acc;
}

rules::ClipResult cpu_clip_norm(const float* g, std::size_t n, rules::NormPartial* partials,
                                float max_norm, bool l2, const float* loss_scale) {
  const std::size_t chunk = (n + kCpuChunks - 1) / kCpuChunks;
#pragma omp parallel for schedule(static)
  for (std::size_t c = 0; c < kCpuChunks; ++c)
    partials[c] = cpu_chunk_norm(g, std::min(n, c * chunk), std::min(n, (c + 1) * chunk));
  rules::NormPartial total{0.0, 0.0F, 0.0F};
  for (std::size_t c = 0; c < kCpuChunks; ++c) total = rules::combine(total, partials[c]);
  return rules::finish(total, max_norm, l2, rules::inverse_scale(loss_scale));
}

}  // namespace

NormType parse_norm_type(std::string_view text) {
  if (text == "2" || text == "l2" || text == "L2") return NormType::kL2;
  if (text == "inf" || text == "linf" || text == "Linf") return NormType::kInf;
  CUTRAIN_FAIL("unsupported norm type '", text, "': expected 2 (l2) or inf (linf)");
}

struct GradClipper::Result : rules::ClipResult {};

GradClipper::GradClipper(Device device, float max_norm, NormType type)
    : device_(device), max_norm_(max_norm), type_(type) {
  CUTRAIN_CHECK(!std::isnan(max_norm) && max_norm > 0, "GradClipper: max_norm = ", max_norm,
                " is invalid; valid: > 0 (+inf: no clipping, non-finite guard only)");
  CUTRAIN_CHECK(type == NormType::kL2 || type == NormType::kInf,
                "GradClipper: unsupported norm type ", static_cast<int>(type));
  // The partials, then the GPU's finishing counter (Note [last block finishes]), zeroed.
  partials_ =
      Buffer(kPartialSlots * sizeof(rules::NormPartial) + sizeof(rules::NormPartial), device);
  partials_.zero();
  result_ = Buffer(sizeof(rules::ClipResult), device);
  result_.zero();
}

void GradClipper::check(const Arena& grads) const {
  CUTRAIN_CHECK(grads.total() > 0, "GradClipper::run: the gradient arena is empty");
  CUTRAIN_CHECK(grads.device() == device_, "GradClipper::run: gradients are on ",
                grads.device().str(), " but the clipper was made for ", device_.str());
}

optim::detail::FusedNorm GradClipper::fused_norm(const Arena& grads, float* norm_out) {
  check(grads);
  auto* partials = partials_.as<rules::NormPartial>();
  return {partials,       reinterpret_cast<unsigned int*>(partials + kPartialSlots),
          result_.data(), norm_out,
          max_norm_,      type_ == NormType::kL2,
          grads.total(),  replicated_};
}

optim::StepGuard GradClipper::run(const Arena& grads, NativeStream stream, float* norm_out) {
  return run_scaled(grads, stream, norm_out, nullptr);
}

optim::StepGuard GradClipper::run_scaled(const Arena& grads, [[maybe_unused]] NativeStream stream,
                                         float* norm_out, const float* loss_scale) {
  check(grads);
  const bool l2 = type_ == NormType::kL2;
  auto* partials = partials_.as<rules::NormPartial>();
  auto* result = result_.as<rules::ClipResult>();
  if (device_.is_cpu()) {
    *result = cpu_clip_norm(grads.data(), grads.total(), partials, max_norm_, l2, loss_scale);
    if (norm_out != nullptr) *norm_out = result->norm;
  } else {
    CUTRAIN_ON_CUDA(detail::cuda::DeviceGuard guard(device_.ordinal()); kernels::launch_clip_norm(
                        grads.data(), grads.total(), partials,
                        reinterpret_cast<unsigned int*>(partials + kPartialSlots), result, norm_out,
                        max_norm_, l2, loss_scale, stream));
  }
  return {&result->scale, &result->skip};
}

GradClipper::Result GradClipper::read() const {
  Result r{};
  copy_bytes(&r, Device::cpu(), result_.data(), device_, sizeof(rules::ClipResult));
  return r;
}

const float* GradClipper::device_norm() const {
  return &result_.as<rules::ClipResult>()->norm;
}

float GradClipper::last_norm() const {
  return read().norm;
}
float GradClipper::last_scale() const {
  return read().scale;
}
bool GradClipper::last_nonfinite() const {
  return read().skip != 0;
}

double global_norm(const Arena& grads, NormType type) {
  GradClipper clipper(grads.device(), std::numeric_limits<float>::infinity(), type);
  clipper.run(grads);
  return clipper.last_norm();
}

void clip_by_value(Arena& grads, float clip_value, [[maybe_unused]] NativeStream stream) {
  CUTRAIN_CHECK(!std::isnan(clip_value) && clip_value > 0,
                "clip_by_value: clip_value = ", clip_value, " is invalid; valid: > 0");
  CUTRAIN_CHECK(grads.total() > 0, "clip_by_value: the gradient arena is empty");
  float* g = grads.data();
  const std::size_t n = grads.total();
  if (grads.device().is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t i) { g[i] = rules::clip_value(clip_value, g[i]); });
  } else {
    CUTRAIN_ON_CUDA(detail::cuda::DeviceGuard guard(grads.device().ordinal());
                    kernels::launch_clip_value(clip_value, g, n, stream));
  }
}

}  // namespace cutrain
