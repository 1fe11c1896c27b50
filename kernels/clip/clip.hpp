#pragma once
// Host-callable launchers of the norm reduction (CUTRAIN_WITH_CUDA builds).

#include <cstddef>

#include "cutrain/stream.hpp"
#include "kernels/clip/norm.cuh"

namespace cutrain::kernels {

inline constexpr int kMaxNormBlocks = 1024;  // size of the partials buffer

// One launch: one partial per block (at most kMaxNormBlocks), combined in a fixed order by the
// last block, which writes the ClipResult (Note [last block finishes]). `done_count` must be
// zero before the first launch; each launch leaves it zero. norm_out (nullable): the norm there
// too (a per-step record, without a copy launch). loss_scale (nullable, device memory): the grads
// are S x g (Note [dynamic loss scale], cutrain/optim/step_control.hpp).
void launch_clip_norm(const float* grads, std::size_t n, rules::NormPartial* partials,
                      unsigned int* done_count, rules::ClipResult* result, float* norm_out,
                      float max_norm, bool l2, const float* loss_scale, NativeStream stream);

}  // namespace cutrain::kernels
