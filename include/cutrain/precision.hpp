#pragma once
// Numeric precision of a training run (torch.autocast's dtypes, with fp32 master weights).
//
// Note [16-bit compute copy]: in bf16 / fp16 the parameters stay an fp32 arena - the master the
// fused optimizer updates, with fp32 moments - and the fused step also writes each updated
// parameter rounded to 16 bits into a compute copy of the same layout (Optimizer::
// enable_compute_copy), the copy the forward and backward passes read. The step never reads the
// copy, and moments are never rounded through 16 bits. Rounding: kernels/common/half.cuh (Note
// [16-bit rounding]).

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

}  // namespace cutrain
