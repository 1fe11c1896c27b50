#pragma once
// Host-callable launchers of the norm reduction (CUTRAIN_WITH_CUDA builds).

#include <cstddef>

#include "cutrain/stream.hpp"
#include "kernels/clip/norm.cuh"

namespace cutrain::kernels {

inline constexpr int kMaxNormBlocks = 1024;  // size of the partials buffer

// Pass 1 writes one partial per block (at most kMaxNormBlocks), pass 2 combines them in a fixed
// order and writes the ClipResult.
void launch_clip_norm(const float* grads, std::size_t n, rules::NormPartial* partials,
                      rules::ClipResult* result, float max_norm, bool l2, NativeStream stream);

}  // namespace cutrain::kernels
