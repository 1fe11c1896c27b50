#pragma once
// Host-callable launchers of the element-wise op kernels (CUTRAIN_WITH_CUDA builds).
// Pointers are device pointers on the current device; `stream` orders the launch.

#include <cstddef>

#include "cutrain/stream.hpp"

namespace cutrain::kernels {

void launch_axpy(float alpha, const float* x, float* y, std::size_t n, NativeStream stream);
// self[i] <- lerp(self[i], end[i], w)
void launch_lerp(float w, const float* end, float* self, std::size_t n, NativeStream stream);
void launch_scale(float alpha, float* x, std::size_t n, NativeStream stream);
void launch_affine(float scale, float* x, float shift, std::size_t n, NativeStream stream);
void launch_clip_value(float limit, float* x, std::size_t n, NativeStream stream);
void launch_fill(float value, float* x, std::size_t n, NativeStream stream);

}  // namespace cutrain::kernels
