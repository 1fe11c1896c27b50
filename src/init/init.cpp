// Initialization: cuRAND fills the tensor, one affine kernel (or CPU loop) maps U(0,1] to
// U(a,b]. Formulas: include/cutrain/init.hpp.
#include "cutrain/init.hpp"

#include <cmath>
#include <vector>

#include "cutrain/error.hpp"
#include "kernels/ops/axpy.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/cuda/runtime.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/ops/ops.hpp"
#endif
#if CUTRAIN_WITH_CURAND
#include "src/rng/curand_generator.hpp"
#endif

namespace cutrain::init {
namespace {

bool finite(double x) {
  return std::isfinite(x);
}

// x <- shift + scale * x over n elements on `device` (the shared rules::affine).
void affine(float* x, std::size_t n, float scale, float shift, Device device,
            [[maybe_unused]] NativeStream stream) {
  if (device.is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t i) { x[i] = rules::affine(scale, x[i], shift); });
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::launch_affine(scale, x, shift, n, stream));
  }
}

void fill(float* x, std::size_t n, float value, Device device,
          [[maybe_unused]] NativeStream stream) {
  if (device.is_cpu()) {
    cpu::parallel_for(n, [=](std::size_t i) { x[i] = value; });
  } else {
    CUTRAIN_ON_CUDA(cutrain::detail::cuda::DeviceGuard guard(device.ordinal());
                    kernels::launch_fill(value, x, n, stream));
  }
}

}  // namespace

Nonlinearity parse_nonlinearity(std::string_view name) {
  if (name == "linear" || name == "identity") return Nonlinearity::kLinear;
  if (name == "sigmoid") return Nonlinearity::kSigmoid;
  if (name == "tanh") return Nonlinearity::kTanh;
  if (name == "relu") return Nonlinearity::kRelu;
  if (name == "leaky_relu") return Nonlinearity::kLeakyRelu;
  if (name == "selu") return Nonlinearity::kSelu;
  CUTRAIN_FAIL("unknown nonlinearity '", name,
               "': expected linear, sigmoid, tanh, relu, leaky_relu or selu");
}

double gain(Nonlinearity nonlinearity, double negative_slope) {
  switch (nonlinearity) {
    case Nonlinearity::kLinear:
    case Nonlinearity::kSigmoid:
      return 1.0;
    case Nonlinearity::kTanh:
      return 5.0 / 3.0;
    case Nonlinearity::kRelu:
      return std::sqrt(2.0);
    case Nonlinearity::kLeakyRelu:
      CUTRAIN_CHECK(finite(negative_slope), "leaky_relu gain: negative_slope = ", negative_slope,
                    " must be finite");
      return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
    case Nonlinearity::kSelu:
      return 3.0 / 4.0;
  }
  CUTRAIN_FAIL("unknown nonlinearity");
}

Fans fans(const Shape& shape) {
  CUTRAIN_CHECK(shape.size() >= 2,
                "fan in and fan out need a tensor of at least 2 dimensions "
                "(a weight [out, in, ...]); got shape ",
                shape_str(shape));
  std::int64_t receptive = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

Scheme Scheme::parse(std::string_view name) {
  if (name == "xavier-uniform") return xavier_uniform();
  if (name == "xavier-normal") return xavier_normal();
  if (name == "he-uniform" || name == "kaiming-uniform") return kaiming_uniform();
  if (name == "he-normal" || name == "kaiming-normal") return kaiming_normal();
  if (name == "zeros") return zeros();
  CUTRAIN_FAIL("unknown initialization '", name,
               "': expected xavier-uniform, xavier-normal, he-uniform, he-normal or zeros");
}

double Distribution::mean() const {
  switch (family) {
    case Family::kConstant:
      return p0;
    case Family::kUniform:
      return (p0 + p1) / 2;
    case Family::kNormal:
      return p0;
  }
  return 0;
}

double Distribution::variance() const {
  switch (family) {
    case Family::kConstant:
      return 0;
    case Family::kUniform:
      return (p1 - p0) * (p1 - p0) / 12;
    case Family::kNormal:
      return p1 * p1;
  }
  return 0;
}

Distribution resolve(const Scheme& s, const Shape& shape) {
  using F = Distribution::Family;
  switch (s.kind) {
    case Scheme::Kind::kZeros:
      return {F::kConstant, 0.0, 0.0};
    case Scheme::Kind::kConstant:
      CUTRAIN_CHECK(finite(s.p0), "constant init: value ", s.p0, " must be finite");
      return {F::kConstant, s.p0, 0.0};
    case Scheme::Kind::kUniform:
      CUTRAIN_CHECK(finite(s.p0) && finite(s.p1) && s.p0 <= s.p1, "uniform init: bounds (", s.p0,
                    ", ", s.p1, ") must be finite with low <= high");
      return {F::kUniform, s.p0, s.p1};
    case Scheme::Kind::kNormal:
      CUTRAIN_CHECK(finite(s.p0) && finite(s.p1) && s.p1 >= 0, "normal init: mean ", s.p0,
                    " and std ", s.p1, " must be finite with std >= 0");
      return {F::kNormal, s.p0, s.p1};
    case Scheme::Kind::kXavierUniform:
    case Scheme::Kind::kXavierNormal: {
      CUTRAIN_CHECK(finite(s.p0) && s.p0 > 0, "xavier init: gain = ", s.p0,
                    " must be finite and > 0");
      const Fans f = fans(shape);
      const double std = s.p0 * std::sqrt(2.0 / static_cast<double>(f.in + f.out));
      if (s.kind == Scheme::Kind::kXavierNormal) return {F::kNormal, 0.0, std};
      const double a = std::sqrt(3.0) * std;
      return {F::kUniform, -a, a};
    }
    case Scheme::Kind::kKaimingUniform:
    case Scheme::Kind::kKaimingNormal: {
      const Fans f = fans(shape);
      const double fan = static_cast<double>(s.mode == FanMode::kFanIn ? f.in : f.out);
      const double std = gain(s.nonlinearity, s.p0) / std::sqrt(fan);
      if (s.kind == Scheme::Kind::kKaimingNormal) return {F::kNormal, 0.0, std};
      const double b = std::sqrt(3.0) * std;
      return {F::kUniform, -b, b};
    }
  }
  CUTRAIN_FAIL("unknown initialization scheme");
}

std::uint64_t tensor_seed(std::uint64_t seed, std::size_t tensor_index) {
  // splitmix64 finalizer over the pair: nearby seeds and indices give unrelated streams.
  std::uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (tensor_index + 1));
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void initialize(Arena& arena, std::string_view name, const Scheme& scheme, std::uint64_t seed,
                NativeStream stream) {
  CUTRAIN_CHECK(arena.total() > 0, "initialize('", name, "'): the arena is empty");
  const auto index = arena.layout().find(name);
  CUTRAIN_CHECK(index.has_value(), "initialize: no tensor named '", name, "' in the arena");
  const TensorSpec& spec = arena.layout().tensors()[*index];
  const Distribution d = resolve(scheme, spec.shape);
  float* data = arena.data() + spec.offset;
  const Device device = arena.device();
  if (d.family == Distribution::Family::kConstant) {
    fill(data, spec.numel, static_cast<float>(d.p0), device, stream);
    return;
  }
#if CUTRAIN_WITH_CURAND
  detail::CurandGenerator gen(device, tensor_seed(seed, *index));
  gen.set_stream(stream);
  if (d.family == Distribution::Family::kUniform) {
    gen.uniform(data, spec.numel);
    affine(data, spec.numel, static_cast<float>(d.p1 - d.p0), static_cast<float>(d.p0), device,
           stream);
  } else {
    // cuRAND draws normals in pairs; an odd tensor borrows one padding element (its aligned
    // range always has room, Note [arena layout]) and that element is zeroed again after.
    const std::size_t even = spec.numel + (spec.numel & 1U);
    gen.normal(data, even, static_cast<float>(d.p0), static_cast<float>(d.p1));
    if (even != spec.numel) fill(data + spec.numel, 1, 0.0F, device, stream);
  }
#else
  (void)seed;
  (void)data;
  CUTRAIN_FAIL("initialize('", name,
               "'): random initialization needs cuRAND, and cutrain was "
               "built without the CUDA toolkit");
#endif
}

}  // namespace cutrain::init
