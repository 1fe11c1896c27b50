#pragma once
// Note [augmentation on the device] (kernels/data/augment.cuh): the dispatch of the batch
// transform, the CPU loop or the kernel.

#include <cstdint>

#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"
#include "kernels/data/augment.cuh"

namespace cutrain::data::detail {

/// y [rows, C H W] = each row of x transformed by its draw (rules::augment_draw), on `device`;
/// a.epoch and a.slot point into `device`'s memory and are read where the work runs.
void augment_rows(Device device, const rules::AugmentArgs& a, const float* x, std::int64_t rows,
                  float* y, NativeStream stream);

/// y [rows, features] = each row of x with its image mirrored left-right (rules::mirror_source:
/// each run of `width` values reversed), on `device` (Note [test-time flips]).
void mirror_rows(Device device, const float* x, std::int64_t rows, std::int64_t features,
                 std::int64_t width, float* y, NativeStream stream);

}  // namespace cutrain::data::detail
