#pragma once
// The CPU twin of kernels/optim/step.cu: the same rule, per element, in an OpenMP simd loop.
//
// Which state slots a configuration uses is fixed at compile time here (a bit mask, one loop
// instantiation per mask), so the loop body has no conditional loads, and every pointer and
// scalar is firstprivate. Measured limit: GCC 12 still leaves the rules' loop-invariant selects
// on bool options (Note [branch-free rules]) unvectorized, so the loop runs scalar; see
// bench/RESULTS.md.

#include <utility>

#include "kernels/optim/step_args.hpp"
#include "src/cpu/parallel.hpp"

namespace cutrain::cpu {

template <class Rule, unsigned Mask>
void optimizer_step_range(const kernels::StepArgs<Rule>& a, const typename Rule::Prepared& prep,
                          std::size_t begin, std::size_t end, float scale) {
  constexpr int S = Rule::kSlots;
  float* __restrict__ params = a.params;
  const float* __restrict__ grads = a.grads;
  float* __restrict__ s0 = a.state[0];
  float* __restrict__ s1 = S > 1 ? a.state[S > 1 ? 1 : 0] : nullptr;
  float* __restrict__ s2 = S > 2 ? a.state[S > 2 ? 2 : 0] : nullptr;
  const typename Rule::Hyper hyper = a.hyper;
  const typename Rule::Prepared pr = prep;
  const auto first = static_cast<std::ptrdiff_t>(begin);
  const auto last = static_cast<std::ptrdiff_t>(end);
  // firstprivate: every thread holds its own copies of the pointers and scalars, so the loop
  // body loads nothing loop-invariant through OpenMP's shared-variable block and vectorizes.
#pragma omp parallel for simd schedule(static) if (end - begin >= kParallelThreshold) \
    firstprivate(params, grads, s0, s1, s2, hyper, pr, scale)
  for (std::ptrdiff_t i = first; i < last; ++i) {
    float st[S] = {};
    if constexpr ((Mask & 1U) != 0) st[0] = s0[i];
    if constexpr (S > 1 && (Mask & 2U) != 0) st[S > 1 ? 1 : 0] = s1[i];
    if constexpr (S > 2 && (Mask & 4U) != 0) st[S > 2 ? 2 : 0] = s2[i];
    float p = params[i];
    Rule::update(hyper, pr, p, grads[i] * scale, st);  // scale is 1 when absent: exact
    params[i] = p;
    if constexpr ((Mask & 1U) != 0) s0[i] = st[0];
    if constexpr (S > 1 && (Mask & 2U) != 0) s1[i] = st[S > 1 ? 1 : 0];
    if constexpr (S > 2 && (Mask & 4U) != 0) s2[i] = st[S > 2 ? 2 : 0];
  }
}

template <class Rule, unsigned... Masks>
void optimizer_step_dispatch(unsigned mask, std::integer_sequence<unsigned, Masks...>,
                             const kernels::StepArgs<Rule>& a, const typename Rule::Prepared& prep,
                             std::size_t begin, std::size_t end, float scale) {
  ((mask == Masks ? optimizer_step_range<Rule, Masks>(a, prep, begin, end, scale) : void()), ...);
}

template <class Rule>
void optimizer_step(const kernels::StepArgs<Rule>& a) {
  constexpr int S = Rule::kSlots;
  static_assert(S >= 1 && S <= 3, "the CPU step handles 1 to 3 state slots");
  const bool skip = a.skip != nullptr && *a.skip != 0;
  const int t = a.counters_in[0] + 1;
  a.counters_out[0] = skip ? t - 1 : t;
  a.counters_out[1] = a.counters_in[1] + (skip ? 1 : 0);
  if (skip) return;  // Non-finite guard: nothing is written.

  const float scale = a.grad_scale != nullptr ? *a.grad_scale : 1.0F;
  unsigned mask = 0;
  for (int k = 0; k < S; ++k)
    if (a.state[k] != nullptr) mask |= 1U << k;
  for (int gi = 0; gi < a.num_groups; ++gi) {
    const kernels::GroupArgs group = a.groups[gi];
    const typename Rule::Prepared prep = Rule::prepare(a.hyper, group.lr, group.weight_decay, t);
    optimizer_step_dispatch(mask, std::make_integer_sequence<unsigned, (1U << S)>{}, a, prep,
                            group.begin, group.end, scale);
  }
}

}  // namespace cutrain::cpu
