#pragma once
// Host-callable launcher of the fused optimizer step (CUTRAIN_WITH_CUDA builds), instantiated
// in kernels/optim/step.cu for every rule in kernels/optim/*.cuh.

#include "cutrain/stream.hpp"
#include "kernels/optim/step_args.hpp"

namespace cutrain::kernels {

template <class Rule>
void launch_optimizer_step(const StepArgs<Rule>& args, NativeStream stream);

// Note [learning rate in device memory]: control->lr[0, n) = lr, ordered on `stream`.
struct StepLr {
  float lr[kMaxGroups];
};
void launch_write_step_lr(optim::StepControl* control, const StepLr& lr, int n,
                          NativeStream stream);

// args.norm set: the norm and the step, in one cooperative launch where the arena fits one
// resident grid, else the norm kernel then the step kernel (Note [clip and step in one launch]).
template <class Rule>
void launch_clip_step(const StepArgs<Rule>& args, NativeStream stream);

// Fused launches so far in this process (tests and benchmarks check the path they measure).
std::int64_t fused_clip_step_launches();

// When the clip step runs as one launch (Note [clip and step in one launch]): kFusedClipStepAuto
// (the default) where it is faster than two (small arenas); 0 never; 1, 2 or 4 wherever the
// arena fits a resident grid with at most that many 16-byte vectors per thread. The environment's
// CUTRAIN_FUSED_CLIP_STEP (auto, 0, 1, 2, 4) sets it at start. For tests and measurements.
inline constexpr int kFusedClipStepAuto = -1;
void set_fused_clip_step_max_vectors(int r);
int fused_clip_step_max_vectors();

}  // namespace cutrain::kernels
