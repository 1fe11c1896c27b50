#pragma once
// The CPU twin of kernels/optim/step.cu: the same rule, per element, in an OpenMP simd loop.
//
// Note [option bits]: the loop is instantiated once per value of the rule's option bits, with
// the bits a compile-time constant in the Prepared copy the loop uses: every option select in
// the rule folds away, the state arrays that configuration uses (Rule::slots) are loaded
// unconditionally and the others not at all, and every pointer and scalar is firstprivate. The
// result is a straight-line loop body that g++ vectorizes (fmaf, sqrt and division included).

#include <utility>

#include "kernels/optim/step_args.hpp"
#include "src/cpu/parallel.hpp"

namespace cutrain::cpu {

template <class Rule, unsigned Bits>
void optimizer_step_range(const kernels::StepArgs<Rule>& a, const typename Rule::Prepared& prep,
                          std::size_t begin, std::size_t end, float scale) {
  constexpr int S = Rule::kSlots;
  constexpr unsigned Mask = Rule::slots(Bits);
  float* __restrict__ params = a.params;
  const float* __restrict__ grads = a.grads;
  float* __restrict__ s0 = a.state[0];
  float* __restrict__ s1 = S > 1 ? a.state[S > 1 ? 1 : 0] : nullptr;
  float* __restrict__ s2 = S > 2 ? a.state[S > 2 ? 2 : 0] : nullptr;
  const typename Rule::Hyper hyper = a.hyper;
  const typename Rule::Prepared pr = prep;
  const auto first = static_cast<std::ptrdiff_t>(begin);
  const auto last = static_cast<std::ptrdiff_t>(end);
#pragma omp parallel for simd schedule(static) if (end - begin >= kParallelThreshold) \
    firstprivate(params, grads, s0, s1, s2, hyper, pr, scale)
  for (std::ptrdiff_t i = first; i < last; ++i) {
    float st[S] = {};
    if constexpr ((Mask & 1U) != 0) st[0] = s0[i];
    if constexpr (S > 1 && (Mask & 2U) != 0) st[S > 1 ? 1 : 0] = s1[i];
    if constexpr (S > 2 && (Mask & 4U) != 0) st[S > 2 ? 2 : 0] = s2[i];
    float p = params[i];
    // The constant is set inside the body: a firstprivate copy's fields are run-time values.
    typename Rule::Prepared constant_bits = pr;
    constant_bits.bits = Bits;  // == prep.bits: the dispatch picked this instantiation
    Rule::update(hyper, constant_bits, p, grads[i] * scale, st);  // scale 1 if absent: exact
    params[i] = p;
    if constexpr ((Mask & 1U) != 0) s0[i] = st[0];
    if constexpr (S > 1 && (Mask & 2U) != 0) s1[i] = st[S > 1 ? 1 : 0];
    if constexpr (S > 2 && (Mask & 4U) != 0) s2[i] = st[S > 2 ? 2 : 0];
  }
}

// Note [16-bit compute copy]: the updated parameters rounded to 16 bits - the GPU kernel's store,
// element for element (the same rule and the same stochastic bits), in a loop of its own so the
// update loop stays straight-line. The format and the rounding mode are template constants, so
// their selects fold away, and nearest-even stores through the branch-free to_half_nearest: g++
// vectorizes the loop (to_half with a run-time `kind` kept it scalar).
template <rules::Half Kind, bool Stochastic>
void write_compute_copy_as(std::uint16_t* __restrict__ out, const float* __restrict__ params,
                           std::uint64_t seed, std::uint64_t t, std::size_t begin,
                           std::size_t end) {
  const auto first = static_cast<std::ptrdiff_t>(begin);
  const auto last = static_cast<std::ptrdiff_t>(end);
#pragma omp parallel for simd schedule(static) if (end - begin >= kParallelThreshold) \
    firstprivate(out, params, seed, t)
  for (std::ptrdiff_t i = first; i < last; ++i) {
    const std::uint32_t random =
        Stochastic ? rules::rounding_bits(seed, t, static_cast<std::uint64_t>(i)) : 0U;
    out[i] = Stochastic ? rules::to_half(Kind, params[i], true, random)
                        : rules::to_half_nearest(Kind, params[i]);
  }
}

template <class Rule>
void write_compute_copy(const kernels::StepArgs<Rule>& a, std::size_t begin, std::size_t end,
                        int t) {
  const auto c = a.copy;
  const auto step = static_cast<std::uint64_t>(t);
  using H = rules::Half;
  if (c.kind == H::kBf16) {
    c.stochastic
        ? write_compute_copy_as<H::kBf16, true>(c.data, a.params, c.seed, step, begin, end)
        : write_compute_copy_as<H::kBf16, false>(c.data, a.params, c.seed, step, begin, end);
  } else {
    c.stochastic
        ? write_compute_copy_as<H::kFp16, true>(c.data, a.params, c.seed, step, begin, end)
        : write_compute_copy_as<H::kFp16, false>(c.data, a.params, c.seed, step, begin, end);
  }
}

template <class Rule, unsigned... AllBits>
void optimizer_step_dispatch(std::integer_sequence<unsigned, AllBits...>,
                             const kernels::StepArgs<Rule>& a, const typename Rule::Prepared& prep,
                             std::size_t begin, std::size_t end, float scale) {
  ((prep.bits == AllBits ? optimizer_step_range<Rule, AllBits>(a, prep, begin, end, scale)
                         : void()),
   ...);
}

template <class Rule>
void optimizer_step(const kernels::StepArgs<Rule>& a) {
  static_assert(Rule::kSlots >= 1 && Rule::kSlots <= 3, "the CPU step handles 1 to 3 slots");
  const bool skip = a.skip != nullptr && *a.skip != 0;
  const int t = a.control->applied + 1;
  optim::finish_step(*a.control, skip);  // Note [device step counter]: the loop reads t above
  if (skip) return;                      // Non-finite guard: nothing is written.

  const float scale = a.grad_scale != nullptr ? *a.grad_scale : 1.0F;
  for (int gi = 0; gi < a.num_groups; ++gi) {
    const kernels::GroupArgs group = a.groups[gi];
    const typename Rule::Prepared prep =
        Rule::prepare(a.hyper, a.control->lr[gi], group.weight_decay, t);
    optimizer_step_dispatch(std::make_integer_sequence<unsigned, (1U << Rule::kBits)>{}, a, prep,
                            group.begin, group.end, scale);
    if (a.copy.data != nullptr) write_compute_copy(a, group.begin, group.end, t);
  }
}

}  // namespace cutrain::cpu
