#pragma once
// Host-callable launchers of the data kernels (CUTRAIN_WITH_CUDA builds).

#include <cstdint>

#include "cutrain/stream.hpp"

namespace cutrain::kernels {

// dst[r, :] = src[order[r], :] for r < rows, rows of `width` 4-byte elements (float features,
// int32 labels, float targets): a resident dataset's batch (Note [resident datasets]).
// `order` holds device-side row indices, each in range (checked by the caller).
void launch_gather_rows(const void* src, std::int64_t width, const std::int64_t* order,
                        std::int64_t rows, void* dst, NativeStream stream);

}  // namespace cutrain::kernels
