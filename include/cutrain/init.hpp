#pragma once
// Parameter initialization through cuRAND (Philox4x32-10): He/Kaiming, Xavier/Glorot, and the
// plain schemes, with torch.nn.init's formulas.
//
//   gain:   linear, sigmoid 1;  tanh 5/3;  relu sqrt(2);  leaky_relu sqrt(2 / (1 + slope^2));
//           selu 3/4                                          (torch.nn.init.calculate_gain)
//   fans:   weight [out, in, k...]: fan_in = in * prod(k), fan_out = out * prod(k)
//   xavier_uniform:  U(-a, a),  a = gain * sqrt(6 / (fan_in + fan_out))   Var = a^2 / 3
//   xavier_normal:   N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))
//   kaiming_uniform: U(-b, b),  b = gain * sqrt(3 / fan)       (fan = fan_in or fan_out)
//   kaiming_normal:  N(0, s^2), s = gain / sqrt(fan)
//   uniform(a, b): U(a, b), Var = (b - a)^2 / 12;   normal(mean, std);   constant;   zeros
//
// cuRAND's uniform numbers lie in (0, 1], so U(a, b) here is (a, b] where PyTorch's is [a, b).
// On the CPU the numbers are cuRAND's host generator's, computed in parallel (Note [Philox on the
// host], src/rng/philox_host.hpp): the same seed gives the same uniform numbers on both backends
// bit for bit; normals differ slightly (the GPU's Box-Muller
// uses its own log/sincos: at most 3.7e-5 relative on an H100, tests/init/init_test.cpp). Each
// tensor's stream is derived from the model seed and the tensor's index in the arena layout, so the
// result does not depend on the order in which tensors are initialized.

#include <cstdint>
#include <string>
#include <string_view>

#include "cutrain/arena.hpp"

namespace cutrain::init {

enum class Nonlinearity { kLinear, kSigmoid, kTanh, kRelu, kLeakyRelu, kSelu };
Nonlinearity parse_nonlinearity(std::string_view name);  ///< "relu", "leaky_relu", ...
double gain(Nonlinearity nonlinearity, double negative_slope = 0.01);

enum class FanMode { kFanIn, kFanOut };
/// A weight's fan-in and fan-out, computed from its shape as PyTorch does.
struct Fans {
  std::int64_t in = 0;   ///< fan_in
  std::int64_t out = 0;  ///< fan_out
};
Fans fans(const Shape& shape);  ///< needs at least 2 dimensions, as in PyTorch

/// An initialization rule (zeros, constant, uniform, normal, Xavier, He, ...) with its arguments,
/// torch.nn.init's semantics.
struct Scheme {
  /// The rule (torch.nn.init's function).
  enum class Kind {
    kZeros,
    kConstant,
    kUniform,
    kNormal,
    kXavierUniform,
    kXavierNormal,
    kKaimingUniform,
    kKaimingNormal
  };
  Kind kind = Kind::kZeros;  ///< which rule
  double p0 = 0.0;  ///< constant value | uniform low | normal mean | xavier gain | kaiming slope
  double p1 = 0.0;  ///< uniform high | normal std
  Nonlinearity nonlinearity = Nonlinearity::kRelu;  ///< kaiming
  FanMode mode = FanMode::kFanIn;                   ///< kaiming

  static Scheme zeros() { return {}; }                                       ///< nn.init.zeros_
  static Scheme constant(double value) { return {Kind::kConstant, value}; }  ///< nn.init.constant_
  static Scheme uniform(double low, double high) {
    return {Kind::kUniform, low, high};
  }  ///< nn.init.uniform_
  static Scheme normal(double mean, double std) {
    return {Kind::kNormal, mean, std};
  }  ///< nn.init.normal_
  static Scheme xavier_uniform(double gain = 1.0) {
    return {Kind::kXavierUniform, gain};
  }  ///< nn.init.xavier_uniform_
  static Scheme xavier_normal(double gain = 1.0) {
    return {Kind::kXavierNormal, gain};
  }  ///< nn.init.xavier_normal_
  /// nn.init.kaiming_uniform_ (He).
  static Scheme kaiming_uniform(Nonlinearity nl = Nonlinearity::kRelu,
                                FanMode mode = FanMode::kFanIn, double negative_slope = 0.0) {
    return {Kind::kKaimingUniform, negative_slope, 0.0, nl, mode};
  }
  /// nn.init.kaiming_normal_ (He).
  static Scheme kaiming_normal(Nonlinearity nl = Nonlinearity::kRelu,
                               FanMode mode = FanMode::kFanIn, double negative_slope = 0.0) {
    return {Kind::kKaimingNormal, negative_slope, 0.0, nl, mode};
  }
  /// "xavier-uniform", "xavier-normal", "he-uniform", "he-normal", "zeros" (He = Kaiming, relu).
  static Scheme parse(std::string_view name);
};

/// What a scheme samples for a tensor of `shape`: the fans and gains resolved.
struct Distribution {
  /// The distribution's family.
  enum class Family { kConstant, kUniform, kNormal };
  Family family = Family::kConstant;  ///< which family p0 and p1 parameterize
  double p0 = 0.0;                    ///< constant value | low | mean
  double p1 = 0.0;                    ///< high | std
  double mean() const;                ///< of the distribution
  double variance() const;            ///< of the distribution
};
Distribution resolve(const Scheme& scheme, const Shape& shape);  ///< throws on bad parameters

/// Fills tensor `name` of `arena` (padding stays zero). No host synchronization on CUDA.
void initialize(Arena& arena, std::string_view name, const Scheme& scheme, std::uint64_t seed,
                NativeStream stream = nullptr);

/// The per-tensor Philox seed: a mix of the model seed and the tensor's index.
std::uint64_t tensor_seed(std::uint64_t seed, std::size_t tensor_index);

}  // namespace cutrain::init
