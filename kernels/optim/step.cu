// The fused optimizer step: one launch updates the whole parameter arena with any rule.
//
// A grid-stride loop over 16-byte vectors of params, grads and each state the configuration
// uses; every lane calls the rule's update() (shared with the CPU loop, Note [bit-identical
// backends]). Groups are contiguous, 64-aligned ranges of the arena, walked one after another
// by the whole grid, so per-group lr / weight decay cost no per-element lookup and the rule's
// step-dependent scalars (bias corrections) are prepared once per thread and group.
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"
#include "kernels/optim/adagrad.cuh"
#include "kernels/optim/adam.cuh"
#include "kernels/optim/optim.hpp"
#include "kernels/optim/rmsprop.cuh"
#include "kernels/optim/sgd.cuh"
#include "kernels/optim/step_control.cuh"

namespace cutrain::kernels {
namespace {

template <class Rule>
__device__ void update_arena(const StepArgs<Rule>& a, int t) {
  constexpr int S = Rule::kSlots;

  // Note [clip scale on device]: the clip coefficient is read here, on the device; without one
  // the scale is 1 and g * 1 == g exactly, so both paths are the same code.
  const float scale = a.grad_scale != nullptr ? *a.grad_scale : 1.0F;
  float* __restrict__ params = a.params;
  const float* __restrict__ grads = a.grads;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;

  for (int gi = 0; gi < a.num_groups; ++gi) {
    const GroupArgs group = a.groups[gi];
    const typename Rule::Prepared prep =
        Rule::prepare(a.hyper, a.control->lr[gi], group.weight_decay, t);
    for (std::size_t i = group.begin / 4 + tid; i < group.end / 4; i += stride) {
      Vec4 p = load4(params, i);
      const Vec4 g = load4(grads, i);
      Vec4 s[S];
#pragma unroll
      for (int k = 0; k < S; ++k) s[k] = a.state[k] != nullptr ? load4(a.state[k], i) : Vec4{};
#pragma unroll
      for (int lane = 0; lane < 4; ++lane) {
        float st[S];
#pragma unroll
        for (int k = 0; k < S; ++k) st[k] = s[k].v[lane];
        Rule::update(a.hyper, prep, p.v[lane], g.v[lane] * scale, st);
#pragma unroll
        for (int k = 0; k < S; ++k) s[k].v[lane] = st[k];
      }
      store4(params, i, p);
      if (a.copy.data != nullptr) store_half4(a.copy, i, p, static_cast<std::uint64_t>(t));
#pragma unroll
      for (int k = 0; k < S; ++k)
        if (a.state[k] != nullptr) store4(a.state[k], i, s[k]);
    }
  }
}

template <class Rule>
__global__ void __launch_bounds__(kBlock) optimizer_step_kernel(const StepArgs<Rule> a) {
  // Note [device step counter]: t is read here, the counts updated by the last block to finish.
  const bool skip = a.skip != nullptr && *a.skip != 0;
  const int t = a.control->applied + 1;
  if (!skip) update_arena(a, t);  // Non-finite guard: nothing is written.
  finish_counts(a.control, skip);
}

__global__ void write_step_lr_kernel(optim::StepControl* control, const StepLr lr, int n) {
  if (static_cast<int>(threadIdx.x) < n) control->lr[threadIdx.x] = lr.lr[threadIdx.x];
}

}  // namespace

template <class Rule>
void launch_optimizer_step(const StepArgs<Rule>& args, NativeStream stream) {
  std::size_t elements = 0;
  for (int g = 0; g < args.num_groups; ++g) elements += args.groups[g].end - args.groups[g].begin;
  const int grid = resident_grid<optimizer_step_kernel<Rule>>(elements / 4);
  optimizer_step_kernel<Rule><<<grid, kBlock, 0, stream>>>(args);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_write_step_lr(optim::StepControl* control, const StepLr& lr, int n,
                          NativeStream stream) {
  write_step_lr_kernel<<<1, kMaxGroups, 0, stream>>>(control, lr, n);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

template void launch_optimizer_step<rules::Sgd>(const StepArgs<rules::Sgd>&, NativeStream);
template void launch_optimizer_step<rules::Adagrad>(const StepArgs<rules::Adagrad>&, NativeStream);
template void launch_optimizer_step<rules::Rmsprop>(const StepArgs<rules::Rmsprop>&, NativeStream);
template void launch_optimizer_step<rules::Adam>(const StepArgs<rules::Adam>&, NativeStream);

}  // namespace cutrain::kernels
