#pragma once
// Numeric precision of a training run (torch.autocast's dtypes, with fp32 master weights).
//
// Note [16-bit compute copy]: in bf16 / fp16 the parameters stay an fp32 arena - the master the
// fused optimizer updates, with fp32 moments - and the fused step also writes each updated
// parameter rounded to 16 bits into a compute copy of the same layout (Optimizer::
// enable_compute_copy). A training loop (Trainer::fit, find_lr: src/train/parameter_copy.hpp)
// attaches it to the model (Sequential::set_parameter_copy), whose training forwards then widen
// it into the fp32 arena the layers read instead of rounding the master themselves - the copy
// 16-bit containers will read as it is; evaluation forwards round the master. The copy is
// rounded to nearest even, or stochastically (Sequential::set_rounding, cutrain-train
// --rounding), which only the step does: the values a model's training forwards read then
// change from step to step around the master, unbiased. The step never reads the copy, and
// moments are never rounded through 16 bits. Rounding: kernels/common/half.cuh (Note
// [16-bit rounding]).

// Note [16-bit values in fp32 storage]: Sequential::set_precision(kBf16 / kFp16) trains with the
// numerics of 16-bit training - every parameter the layers read, every activation and every
// activation gradient holds a value of the 16-bit format (rounded to nearest even after each
// layer, the parameters (or, in a training loop, the optimizer's copy widened: Note [16-bit
// compute copy]) and the input at the start of each forward, the loss's gradient at the start of
// backward; not after a layer that keeps 16-bit values or rounds its own stores,
// nn::Layer::keeps_16bit_values)
// - while the containers are still fp32 arrays. The GEMMs multiply the 16-bit
// values exactly and accumulate in fp32: on the CPU in OpenBLAS's SGEMM, on a GPU on the 16-bit
// tensor cores (cuBLAS(Lt)'s CUBLAS_COMPUTE_32F_FAST_16BF / _16F, whose conversion of the
// operands is exact because they are 16-bit values already). Kept in fp32: the master weights
// the optimizer updates (with fp32 moments), the parameter gradients, the loss, softmax, the
// norms and BatchNorm's statistics - as torch.autocast and GradScaler keep them. fp16 needs
// dynamic loss scaling (Optimizer::enable_loss_scaling): its gradients underflow below 2^-24.
// Not built yet: 16-bit containers (half the activation memory and traffic), which the fused
// step's copy is ready to fill; until then a GPU gains the tensor-core GEMMs only.

#include <cstdint>
#include <string_view>

namespace cutrain {

enum class Precision : std::uint8_t {
  kFp32,  ///< float32 everywhere (the default)
  kTf32,  ///< float32 storage, TF32 tensor-core GEMMs (GPU only)
  kBf16,  ///< bfloat16 compute copy and activations, fp32 master weights
  kFp16,  ///< float16 likewise, with dynamic loss scaling
};
Precision parse_precision(std::string_view text);  ///< "fp32", "tf32", "bf16", "fp16"
const char* precision_name(Precision p);
/// True for the 16-bit storage modes (bf16, fp16).
constexpr bool is_half(Precision p) {
  return p == Precision::kBf16 || p == Precision::kFp16;
}

enum class Rounding : std::uint8_t {
  kNearestEven,  ///< what cvt.rn and torch's .to() do (the default)
  kStochastic,   ///< unbiased; bits from (seed, applied step, element index)
};
Rounding parse_rounding(std::string_view text);  ///< "nearest", "stochastic"
const char* rounding_name(Rounding r);

}  // namespace cutrain
