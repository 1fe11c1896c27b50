#pragma once
// What one fused optimizer step needs, shared by the CUDA kernel (step.cu) and the CPU loop
// (src/optim/step_cpu.hpp). Passed to the kernel by value.

#include <cstddef>
#include <cstdint>

#include "cutrain/optim/step_control.hpp"
#include "kernels/clip/norm.cuh"
#include "kernels/common/half.cuh"

namespace cutrain::kernels {

inline constexpr int kMaxGroups = optim::kMaxStepGroups;

struct GroupArgs {
  std::size_t begin = 0;  // elements; multiples of 4 (arena groups are 64-aligned)
  std::size_t end = 0;
  float weight_decay = 0.0F;  // the lr: StepControl::lr (Note [learning rate in device memory])
};

// Note [clip and step in one launch] (kernels/optim/clip_step.cu): where the step computes the
// global norm of the whole gradient arena itself - GradClipper's buffers. partials == nullptr:
// the step reads grad_scale and skip instead.
struct FusedNormArgs {
  rules::NormPartial* partials = nullptr;  // at least kMaxNormBlocks (kernels/clip/clip.hpp)
  unsigned int* done_count = nullptr;      // the norm kernel's, for the two-launch fallback
  rules::ClipResult* result = nullptr;
  float* norm_out = nullptr;  // optional: the norm there too
  float max_norm = 0.0F;
  bool l2 = true;
  std::size_t n = 0;        // the arena's elements, padding included
  bool replicated = false;  // Note [replicas reduce alike]: the two launches, never the fused one
};

template <class Rule>
struct StepArgs {
  float* params = nullptr;
  const float* grads = nullptr;
  float* state[Rule::kSlots] = {};  // null: the slot is unused by this configuration
  typename Rule::Hyper hyper{};
  GroupArgs groups[kMaxGroups] = {};
  int num_groups = 0;
  const float* grad_scale = nullptr;      // optional, Note [clip scale on device]
  const std::int32_t* skip = nullptr;     // optional non-finite guard flag
  optim::StepControl* control = nullptr;  // Note [step control block]: counts read and updated
  FusedNormArgs norm;                     // optional, Note [clip and step in one launch]
  // Note [16-bit compute copy] (cutrain/precision.hpp): optional; each updated parameter is also
  // stored rounded to 16 bits here (kernels/common/half.cuh).
  struct {
    std::uint16_t* data = nullptr;
    rules::Half kind = rules::Half::kBf16;
    bool stochastic = false;
    std::uint64_t seed = 0;
  } copy;
};

}  // namespace cutrain::kernels

// Note [branch-free rules]: a rule's options (maximize, weight decay, momentum, centered,
// amsgrad, ...) are written as selects between values computed either way, never as branches
// around statements. The GPU pays nothing (uniform selects), and the CPU loop stays a straight
// line that g++ vectorizes. Each select picks the very expression PyTorch evaluates, so results
// are unchanged bit for bit.

// Note [option bits]: each rule folds its boolean options (maximize, weight decay on/off,
// momentum, centered, amsgrad, first step, ...) into Prepared::bits, computed once per group in
// prepare(). The GPU kernel reads the bits at run time (uniform, free); the CPU loop is
// instantiated once per possible value of the bits, with the bits a compile-time constant, so
// every option select folds away and g++ vectorizes the straight-line update. Rule::slots(bits)
// says which state arrays that configuration reads and writes.
