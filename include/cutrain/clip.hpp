#pragma once
// Gradient clipping and the non-finite guard, without host synchronization.
//
// GradClipper::run reads the gradient arena once (Optimizer::step(params, grads, clipper) runs it
// and the step together, in one launch on a GPU for arenas up to about a million parameters): a
// deterministic two-pass reduction (fixed partition, fixed combination order: the same input on the
// same device gives the same bits) computes the global norm, in double,
//   L2:  norm = sqrt(sum g^2)        Linf: norm = max |g|
// and from it, on the device,
//   scale = min(1, max_norm / (norm + 1e-6))      (torch.nn.utils.clip_grad_norm_)
//   skip  = the sum of squares is not finite (a NaN or Inf gradient)
// The returned optim::StepGuard points at scale and skip; the optimizer step multiplies each
// gradient by scale as it reads it and, when skip is set, changes nothing. Gradients are never
// rewritten, so clip + Adam moves 4 + 28 bytes per parameter (Note [clip scale on device]).
// max_norm = +inf keeps the guard and disables clipping. With an optimizer's dynamic loss scale
// S the gradients are S x g, and the clipper, run by Optimizer::step, computes all of this for g
// (Note [dynamic loss scale], cutrain/optim/step_control.hpp). The pre-clip norm is kept on the
// device; last_norm() reads it (a synchronization), as clip_grad_norm_ returns it.

#include <cstdint>
#include <string_view>

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/optim/optimizer.hpp"

namespace cutrain {

enum class NormType { kL2, kInf };
NormType parse_norm_type(std::string_view text);  ///< "2", "l2", "inf", "linf"

/// Global gradient-norm clipping and the non-finite guard, computed on the device with no host
/// synchronisation (Note [clip scale on device]).
class GradClipper {
 public:
  /// Clips to max_norm (+inf: the non-finite guard only) by the L2 or infinity norm.
  GradClipper(Device device, float max_norm, NormType type = NormType::kL2);

  /// Reduces `grads` and writes norm, scale and skip on the device. No host synchronization.
  /// norm_out (nullable, device memory on the clipper's device): the pre-clip norm there too - a
  /// per-step record without a copy of its own.
  optim::StepGuard run(const Arena& grads, NativeStream stream = nullptr,
                       float* norm_out = nullptr);

  /// Results of the last run(); each reads device memory (a synchronization).
  float last_norm() const;
  /// The last factor the step multiplied gradients by: the clip coefficient (1 when unclipped),
  /// times 1 / S when the optimizer scales the loss (Note [dynamic loss scale]).
  float last_scale() const;
  bool last_nonfinite() const;  ///< the last gradients held inf or NaN (the step was skipped)

  /// The last pre-clip norm, on the device (copy it asynchronously; no sync).
  const float* device_norm() const;
  float max_norm() const { return max_norm_; }  ///< as constructed
  NormType type() const { return type_; }       ///< as constructed

  /// Note [replicas reduce alike]: data-parallel replicas must compute the same norm bits, on
  /// any mix of GPU models. The norm kernel's partition depends on the arena's size alone; a
  /// replicated clipper also never takes the fused clip-and-step launch, whose partition follows
  /// the device's residency. The Trainer sets it for runs of more than one rank.
  void set_replicated(bool replicated) { replicated_ = replicated; }
  bool replicated() const { return replicated_; }  ///< set_replicated's value

 private:
  friend class optim::Optimizer;  ///< step(params, grads, clipper): Note [clip and step in one
                                  /// launch]
  /// Checks `grads` as run() does; where a fused step writes what run() would.
  optim::detail::FusedNorm fused_norm(const Arena& grads, float* norm_out);
  /// run() for gradients S x g, S at loss_scale (device memory; null: 1): the norm of g, and the
  /// factor clip x 1 / S (Note [dynamic loss scale], cutrain/optim/step_control.hpp).
  optim::StepGuard run_scaled(const Arena& grads, NativeStream stream, float* norm_out,
                              const float* loss_scale);
  void check(const Arena& grads) const;
  struct Result;
  Result read() const;
  Device device_;
  float max_norm_;
  NormType type_;
  Buffer partials_;  ///< one NormPartial per block (kernels/clip/norm.cuh)
  Buffer result_;    ///< {float norm, float scale, int32 skip, int32 pad}
  bool replicated_ = false;
};

/// The global norm of an arena, synchronously (a convenience over GradClipper).
double global_norm(const Arena& grads, NormType type = NormType::kL2);

/// Clamps every gradient to [-clip_value, clip_value] (torch.nn.utils.clip_grad_value_).
void clip_by_value(Arena& grads, float clip_value, NativeStream stream = nullptr);

}  // namespace cutrain
