#pragma once
// The optimizer interface shared by SGD, AdaGrad, RMSProp and Adam/AdamW.
//
// One step() is one fused kernel launch over the whole parameter arena (one OpenMP loop on the
// CPU), whatever the number of tensors, and never synchronizes with the host.
// The step counters live on the device (Note [device step counter],
// cutrain/optim/step_control.hpp).

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/optim/step_control.hpp"
#include "cutrain/precision.hpp"
#include "cutrain/stream.hpp"

namespace cutrain {
class GradClipper;
}

namespace cutrain::optim {

/// Device-side inputs a step may consume (both optional; pointers on the optimizer's device).
///   grad_scale: every gradient is multiplied by *grad_scale before use (the clip coefficient).
///   skip:       when *skip != 0 the step changes nothing: parameters, state and t stay as they
///               were (the non-finite guard), and the skip counter increments.
struct StepGuard {
  const float* grad_scale = nullptr;   ///< device float: gradients are multiplied by it (null: 1)
  const std::int32_t* skip = nullptr;  ///< device int32: non-zero skips the step (null: never)
};

/// Dynamic loss scaling, torch.cuda.amp.GradScaler's rules and defaults (Note [dynamic loss
/// scale], cutrain/optim/step_control.hpp). init_scale, growth_factor and backoff_factor must be
/// powers of two (so that scaling and unscaling are exact): Optimizer::enable_loss_scaling
/// checks.
struct LossScaling {
  float init_scale = 65536.0F;  ///< S before the first step (2^16)
  float growth_factor = 2.0F;   ///< S x this after growth_interval clean steps in a row
  float backoff_factor = 0.5F;  ///< S x this, and the step skipped, on an inf/NaN gradient
  int growth_interval = 2000;   ///< clean steps before S grows
};

/// The scaler's state: what a checkpoint saves (GradScaler.state_dict's scale and
/// _growth_tracker).
struct LossScaleState {
  float scale = 1.0F;             ///< S
  std::int32_t growth_count = 0;  ///< clean steps since S last changed
};

/// Per parameter-group settings (groups come from ArenaLayout: each is one contiguous range).
struct GroupOptions {
  float lr_scale = 1.0F;    ///< the group's lr is lr() * lr_scale
  float weight_decay = -1;  ///< < 0: use the optimizer's weight_decay
};

/// A named optimizer state arena ("exp_avg", "momentum_buffer", ...), in PyTorch's state names.
struct NamedState {
  std::string name;  ///< torch.optim's state key ("exp_avg", ...)
  Arena* arena;      ///< the state, in the parameters' layout
};

namespace detail {
/// A GradClipper's device buffers, for a step that computes the norm itself (Note [clip and
/// step in one launch], kernels/optim/clip_step.cu; typed in kernels::FusedNormArgs).
struct FusedNorm {
  void* partials = nullptr;  ///< null: no fused norm
  unsigned int* done_count = nullptr;
  void* result = nullptr;
  float* norm_out = nullptr;
  float max_norm = 0.0F;
  bool l2 = true;
  std::size_t n = 0;
  bool replicated = false;  ///< Note [replicas reduce alike] (cutrain/clip.hpp)
};
/// What one launch needs, resolved by Optimizer::step() (see kernels/optim/step_args.hpp).
struct StepLaunch {
  Arena* params;
  const Arena* grads;
  StepGuard guard;
  NativeStream stream;
  StepControl* control;  ///< Note [step control block]: read and updated by the step
  FusedNorm norm;
  /// Note [16-bit compute copy] (cutrain/precision.hpp): null data, no copy.
  struct ComputeCopy {
    std::uint16_t* data = nullptr;
    Precision precision = Precision::kBf16;
    Rounding rounding = Rounding::kNearestEven;
    std::uint64_t seed = 0;
  } copy;
};
struct GroupValues {
  std::size_t begin;  ///< elements
  std::size_t end;
  float lr;
  float weight_decay;
};
}  // namespace detail

/// The base of the fused optimizers: parameter groups, the device-side step counters, the clip and
/// guard inside the step, and state in and out.
class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// params <- update(params, grads). Both arenas must have the layout and device the optimizer
  /// was built for. Ordered on `stream` (null: the legacy default stream); no host sync.
  void step(Arena& params, const Arena& grads, const StepGuard& guard = {},
            NativeStream stream = nullptr);
  /// Clipping and the step together: what clipper.run(grads, stream, norm_out) followed by
  /// step(params, grads, guard, stream) does, with the same results (the clipper's last_norm()
  /// etc. included). On a GPU, where the arena fits one resident grid (about a million
  /// parameters on an H100), the norm and the step are one launch that reads each gradient once
  /// (Note [clip and step in one launch]); the norm may then differ from run()'s in its last bit.
  void step(Arena& params, const Arena& grads, GradClipper& clipper, NativeStream stream = nullptr,
            float* norm_out = nullptr);

  float lr() const { return lr_; }  ///< the base learning rate (groups scale it)
  void set_lr(float lr);            ///< e.g. from an LrSchedule, before each step
  /// Writes each group's lr x lr_scale into the device-side step control block, on `stream`, if
  /// it changed since the last write (Note [learning rate in device memory]). step() calls it;
  /// call it yourself between replays of a captured step (outside the capture).
  void commit_lr(NativeStream stream = nullptr);
  /// Group `group`'s lr scale and weight decay (e.g. no weight decay on biases, kNoDecayGroup).
  void set_group(int group, GroupOptions options);

  /// Steps issued by the host so far (no sync).
  std::int64_t issued_steps() const { return issued_; }
  /// Steps issued other than by step(): +1 for each replay of a step captured in a CUDA graph
  /// (the device's counts it updates itself), -1 for a capture that was discarded.
  void add_issued_steps(std::int64_t n) { issued_ += n; }
  /// Steps applied and skipped on the device. These read device memory: a synchronization.
  std::int64_t applied_steps() const;
  std::int64_t skipped_steps() const;  ///< steps the non-finite guard skipped

  /// The state arenas, for checkpoints; the step counter is saved with applied_steps() and
  /// restored with set_step_counts().
  std::vector<NamedState> state();
  /// Restores a checkpoint's counts (bias corrections continue from `applied`); the steps issued
  /// become applied + skipped, as in the run that wrote them.
  void set_step_counts(std::int64_t applied, std::int64_t skipped);

  /// Note [dynamic loss scale]: from now on the gradients this optimizer steps on are taken to be
  /// S times the true ones - the loss's backward seeds them with device_loss_scale() - and every
  /// step is a step(params, grads, clipper, ...): the clipper unscales (norm, clip and the
  /// non-finite guard on the true gradient) and the step updates S by GradScaler's rules. Throws
  /// cutrain::Error naming an option that is not valid.
  void enable_loss_scaling(const LossScaling& options = {});
  bool loss_scaling() const { return scaling_; }  ///< enable_loss_scaling was called
  /// enable_loss_scaling's options (GradScaler's defaults before it).
  const LossScaling& loss_scaling_options() const { return scaling_options_; }
  /// Where S lives on the device (the loss reads it as its gradient's seed); null without loss
  /// scaling.
  const float* device_loss_scale() const;
  /// S and its growth count (reads device memory: a synchronization); {1, 0} without scaling.
  LossScaleState loss_scale_state() const;
  /// Restores a checkpoint's scaler state (after enable_loss_scaling). Throws unless scale is a
  /// finite power of two > 0 and growth_count in [0, growth_interval).
  void set_loss_scale_state(const LossScaleState& state);

  /// Note [16-bit compute copy] (cutrain/precision.hpp): from now on every step also writes the
  /// updated parameters rounded to `precision` (bf16 or fp16) into compute_copy(), with
  /// `rounding` (stochastic: bits from `seed`, the applied step and the element's index). The
  /// copy starts as `params` rounded the same way; a skipped step leaves it as it was.
  void enable_compute_copy(const Arena& params, Precision precision,
                           Rounding rounding = Rounding::kNearestEven, std::uint64_t seed = 0);
  /// The 16-bit values (bf16 or fp16 bits), one per arena element in the parameters' layout, on
  /// the optimizer's device; empty without enable_compute_copy.
  const Buffer& compute_copy() const { return copy_; }
  /// Rewrites the copy from `params` as the last applied step would have (after loading weights
  /// or a checkpoint: the same bits as an uninterrupted run). Reads the step counter: a sync.
  void refresh_compute_copy(const Arena& params);
  const std::string& name() const { return name_; }  ///< torch.optim's class name ("AdamW", ...)
  Device device() const { return device_; }          ///< where its state lives
  const ArenaLayout& layout() const { return *layout_; }  ///< of the parameters it updates

 protected:
  /// `name`: torch.optim's class name; the arena fixes the layout and device.
  Optimizer(std::string name, const Arena& params, float lr, float weight_decay);
  Arena& add_state(std::string name);  ///< a zero-filled state arena like the parameters

  virtual void run(const detail::StepLaunch& launch) = 0;  ///< the rule's launch
  std::vector<detail::GroupValues> group_values() const;   ///< each group's range, lr and decay

 private:
  void check_arenas(const Arena& params, const Arena& grads) const;
  void launch(Arena& params, const Arena& grads, const StepGuard& guard, NativeStream stream,
              const detail::FusedNorm& norm);

  std::string name_;
  Device device_;
  std::shared_ptr<const ArenaLayout> layout_;
  float lr_;
  float weight_decay_;
  std::vector<std::pair<int, GroupOptions>> groups_;
  std::deque<std::pair<std::string, Arena>> states_;  ///< deque: add_state() references stay valid
  Buffer control_;  ///< one StepControl on the device; Note [step control block]
  Buffer copy_;     ///< uint16 per arena element; Note [16-bit compute copy]
  detail::StepLaunch::ComputeCopy copy_options_;
  std::int64_t issued_ = 0;
  bool scaling_ = false;  ///< enable_loss_scaling was called
  LossScaling scaling_options_;
  std::vector<float> committed_lr_;  ///< what the block holds (empty: nothing written yet)
  NativeStream last_stream_ =
      nullptr;  ///< the last step's stream (Note [read after the writing stream])
  StepControl read_control() const;
  void write_control(const StepControl& c, std::size_t begin, std::size_t end);
};

/// Throws cutrain::Error naming the parameter, its value and the valid range.
void check_hyper(bool ok, const char* optimizer, const char* parameter, double value,
                 const char* valid);

}  // namespace cutrain::optim
