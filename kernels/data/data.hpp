#pragma once
// Host-callable launchers of the data kernels (CUTRAIN_WITH_CUDA builds).

#include <cstddef>
#include <cstdint>

#include "cutrain/stream.hpp"
#include "kernels/data/augment.cuh"

namespace cutrain::kernels {

// dst[r, :] = src[order[r], :] for r < rows, rows of `width` 4-byte elements (float features,
// int32 labels, float targets): a resident dataset's batch (Note [resident datasets]).
// `order` holds device-side row indices, each in range (checked by the caller).
void launch_gather_rows(const void* src, std::int64_t width, const std::int64_t* order,
                        std::int64_t rows, void* dst, NativeStream stream);

// Note [augmentation on the device]: y = x with each of its `rows` rows translated and flipped
// by its own draw; a.epoch and a.slot are read by the kernel.
void launch_augment_rows(const rules::AugmentArgs& a, const float* x, std::int64_t rows, float* y,
                         NativeStream stream);

// Note [test-time flips]: y = x with each row's image mirrored left-right (rules::mirror_source);
// n = rows x features, a multiple of `width`.
void launch_mirror_rows(const float* x, std::size_t n, std::int64_t width, float* y,
                        NativeStream stream);

}  // namespace cutrain::kernels
