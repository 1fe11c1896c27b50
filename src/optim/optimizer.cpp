#include "cutrain/optim/optimizer.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cutrain/clip.hpp"
#include "cutrain/error.hpp"
#include "kernels/common/half.cuh"
#include "kernels/optim/step_args.hpp"
#include "src/cuda/runtime.hpp"
#include "src/optim/dispatch.hpp"

namespace cutrain::optim {

void check_hyper(bool ok, const char* optimizer, const char* parameter, double value,
                 const char* valid) {
  CUTRAIN_CHECK(ok, optimizer, ": ", parameter, " = ", value, " is invalid; valid: ", valid);
}

Optimizer::Optimizer(std::string name, const Arena& params, float lr, float weight_decay)
    : name_(std::move(name)),
      device_(params.device()),
      layout_(params.layout_ptr()),
      lr_(lr),
      weight_decay_(weight_decay) {
  CUTRAIN_CHECK(layout_ != nullptr && params.total() > 0, name_, ": the parameter arena is empty");
  CUTRAIN_CHECK(layout_->groups().size() <= static_cast<std::size_t>(kernels::kMaxGroups), name_,
                ": the arena has ", layout_->groups().size(), " parameter groups; at most ",
                kernels::kMaxGroups, " are supported");
  check_hyper(std::isfinite(lr) && lr >= 0, name_.c_str(), "lr", lr, "finite and >= 0");
  check_hyper(std::isfinite(weight_decay) && weight_decay >= 0, name_.c_str(), "weight_decay",
              weight_decay, "finite and >= 0");
  control_ = Buffer(sizeof(StepControl), device_);
  const StepControl initial;  // no step yet, S = 1, no scaling
  copy_bytes(control_.data(), device_, &initial, Device::cpu(), sizeof(initial));
}

Optimizer::~Optimizer() = default;

Arena& Optimizer::add_state(std::string name) {
  states_.emplace_back(std::move(name), Arena(layout_, device_));
  return states_.back().second;
}

void Optimizer::set_lr(float lr) {
  check_hyper(std::isfinite(lr) && lr >= 0, name_.c_str(), "lr", lr, "finite and >= 0");
  lr_ = lr;
}

void Optimizer::set_group(int group, GroupOptions options) {
  bool found = false;
  for (const GroupRange& g : layout_->groups()) found = found || g.group == group;
  CUTRAIN_CHECK(found, name_, ": set_group(", group, "): the arena has no tensor in group ", group);
  check_hyper(std::isfinite(options.lr_scale) && options.lr_scale >= 0, name_.c_str(), "lr_scale",
              options.lr_scale, "finite and >= 0");
  check_hyper(std::isfinite(options.weight_decay), name_.c_str(), "group weight_decay",
              options.weight_decay, "finite (negative: the optimizer's own)");
  for (auto& [id, opts] : groups_) {
    if (id == group) {
      opts = options;
      return;
    }
  }
  groups_.emplace_back(group, options);
}

std::vector<detail::GroupValues> Optimizer::group_values() const {
  std::vector<detail::GroupValues> out;
  for (const GroupRange& g : layout_->groups()) {
    GroupOptions o;
    for (const auto& [id, opts] : groups_)
      if (id == g.group) o = opts;
    out.push_back(
        {g.begin, g.end, lr_ * o.lr_scale, o.weight_decay >= 0 ? o.weight_decay : weight_decay_});
  }
  return out;
}

void Optimizer::check_arenas(const Arena& params, const Arena& grads) const {
  CUTRAIN_CHECK(params.total() > 0 && params.layout() == *layout_, name_,
                ": step() got a parameter arena with another layout than the optimizer was "
                "built for");
  require_same_layout(params, grads, (name_ + ".step(params, grads)").c_str());
  CUTRAIN_CHECK(params.device() == device_, name_, ": parameters are on ", params.device().str(),
                " but the optimizer state is on ", device_.str());
  CUTRAIN_CHECK(params.data() != grads.data(), name_,
                ": params and grads must be different arenas");
}

void Optimizer::commit_lr(NativeStream stream) {
  std::vector<float> lr;
  for (const detail::GroupValues& g : group_values()) lr.push_back(g.lr);
  if (lr == committed_lr_) return;  // the block holds these values (never NaN: set_lr checks)
  write_step_lr(device_, control_.as<StepControl>(), lr.data(), static_cast<int>(lr.size()),
                stream);
  committed_lr_ = std::move(lr);
}

void Optimizer::launch(Arena& params, const Arena& grads, const StepGuard& guard,
                       NativeStream stream, const detail::FusedNorm& norm) {
  commit_lr(stream);
  detail::StepLaunch l{&params, &grads, guard, stream, control_.as<StepControl>(), norm, {}};
  if (copy_.bytes() > 0) {
    l.copy = copy_options_;
    l.copy.data = copy_.as<std::uint16_t>();
  }
  run(l);
  ++issued_;
  last_stream_ = stream;
}

void Optimizer::step(Arena& params, const Arena& grads, const StepGuard& guard,
                     NativeStream stream) {
  check_arenas(params, grads);
  CUTRAIN_CHECK(!scaling_, name_,
                ": with loss scaling every step is step(params, grads, clipper): the clipper "
                "unscales the gradients and finds the non-finite ones (a GradClipper with max_norm "
                "= +inf clips nothing)");
  launch(params, grads, guard, stream, {});
}

void Optimizer::step(Arena& params, const Arena& grads, GradClipper& clipper, NativeStream stream,
                     float* norm_out) {
  check_arenas(params, grads);
  if (device_.is_cpu()) {  // two loops either way: nothing to fuse
    const StepGuard guard = clipper.run_scaled(
        grads, stream, norm_out, scaling_ ? &control_.as<StepControl>()->loss_scale : nullptr);
    launch(params, grads, guard, stream, {});
    return;
  }
  launch(params, grads, {}, stream, clipper.fused_norm(grads, norm_out));
}

// Note [read after the writing stream]: the counters are written by the last step's kernel on
// the caller's stream, a non-blocking stream in the Trainer; a plain device-to-host copy runs on
// the legacy default stream, which does not wait for non-blocking streams. So a read first
// waits for the stream the last step was issued on - or it may return the count before it.
StepControl Optimizer::read_control() const {
  if (device_.is_cuda() && last_stream_ != nullptr)
    cutrain::detail::cuda::stream_synchronize(last_stream_, device_.ordinal());
  StepControl c;
  copy_bytes(&c, Device::cpu(), control_.data(), device_, sizeof(c));
  return c;
}

std::int64_t Optimizer::applied_steps() const {
  return read_control().applied;
}

std::int64_t Optimizer::skipped_steps() const {
  return read_control().skipped;
}

void Optimizer::set_step_counts(std::int64_t applied, std::int64_t skipped) {
  CUTRAIN_CHECK(applied >= 0 && skipped >= 0 && applied < INT32_MAX && skipped < INT32_MAX, name_,
                ": step counts (", applied, ", ", skipped, ") out of range");
  StepControl c;  // the ticket at rest (0): no step is in flight once the stream is drained
  c.applied = static_cast<std::int32_t>(applied);
  c.skipped = static_cast<std::int32_t>(skipped);
  if (device_.is_cuda() && last_stream_ != nullptr)  // after the steps already issued
    cutrain::detail::cuda::stream_synchronize(last_stream_, device_.ordinal());
  // The counts and the ticket; the committed learning rates and the loss scale stay.
  write_control(c, 0, offsetof(StepControl, reserved));
  // No step is in flight: the steps issued are those counted, so a resumed run's count (a
  // checkpoint records it) continues the uninterrupted run's.
  issued_ = applied + skipped;
}

// Writes bytes [begin, end) of the block, after the steps already issued.
void Optimizer::write_control(const StepControl& c, std::size_t begin, std::size_t end) {
  if (device_.is_cuda() && last_stream_ != nullptr)
    cutrain::detail::cuda::stream_synchronize(last_stream_, device_.ordinal());
  copy_bytes(control_.as<std::byte>() + begin, device_,
             reinterpret_cast<const std::byte*>(&c) + begin, Device::cpu(), end - begin);
}

namespace {
bool power_of_two(float x) {
  int e = 0;
  return std::isfinite(x) && x > 0 && std::frexp(x, &e) == 0.5F;
}
}  // namespace

void Optimizer::enable_loss_scaling(const LossScaling& o) {
  check_hyper(power_of_two(o.init_scale), name_.c_str(), "loss scaling init_scale", o.init_scale,
              "a finite power of two > 0 (e.g. 65536)");
  check_hyper(power_of_two(o.growth_factor) && o.growth_factor > 1, name_.c_str(),
              "loss scaling growth_factor", o.growth_factor, "a power of two > 1 (e.g. 2)");
  check_hyper(power_of_two(o.backoff_factor) && o.backoff_factor < 1, name_.c_str(),
              "loss scaling backoff_factor", o.backoff_factor, "a power of two < 1 (e.g. 0.5)");
  check_hyper(o.growth_interval >= 1, name_.c_str(), "loss scaling growth_interval",
              o.growth_interval, ">= 1 (e.g. 2000)");
  StepControl c;
  c.loss_scale = o.init_scale;
  c.growth_count = 0;
  c.growth_interval = o.growth_interval;
  c.growth_factor = o.growth_factor;
  c.backoff_factor = o.backoff_factor;
  write_control(c, offsetof(StepControl, loss_scale), sizeof(StepControl));
  scaling_ = true;
  scaling_options_ = o;
}

const float* Optimizer::device_loss_scale() const {
  return scaling_ ? &control_.as<StepControl>()->loss_scale : nullptr;
}

LossScaleState Optimizer::loss_scale_state() const {
  if (!scaling_) return {};
  const StepControl c = read_control();
  return {c.loss_scale, c.growth_count};
}

void Optimizer::set_loss_scale_state(const LossScaleState& state) {
  CUTRAIN_CHECK(scaling_, name_, ": set_loss_scale_state without enable_loss_scaling");
  check_hyper(power_of_two(state.scale), name_.c_str(), "loss scale", state.scale,
              "a finite power of two > 0");
  check_hyper(state.growth_count >= 0 && state.growth_count < scaling_options_.growth_interval,
              name_.c_str(), "loss scale growth count", state.growth_count, "[0, growth_interval)");
  StepControl c;
  c.loss_scale = state.scale;
  c.growth_count = state.growth_count;
  write_control(c, offsetof(StepControl, loss_scale), offsetof(StepControl, growth_interval));
}

std::vector<NamedState> Optimizer::state() {
  std::vector<NamedState> out;
  for (auto& [name, arena] : states_) out.push_back({name, &arena});
  return out;
}

// Note [16-bit compute copy] (cutrain/precision.hpp).
void Optimizer::enable_compute_copy(const Arena& params, Precision precision, Rounding rounding,
                                    std::uint64_t seed) {
  CUTRAIN_CHECK(params.total() > 0 && params.layout() == *layout_ && params.device() == device_,
                name_, ": the compute copy's parameters are not the arena this optimizer updates");
  CUTRAIN_CHECK(is_half(precision), name_, ": a compute copy is 16-bit (bf16 or fp16), not ",
                precision_name(precision));
  copy_options_ = {nullptr, precision, rounding, seed};
  copy_ = Buffer(layout_->total() * sizeof(std::uint16_t), device_);
  refresh_compute_copy(params);
}

void Optimizer::refresh_compute_copy(const Arena& params) {
  CUTRAIN_CHECK(copy_.bytes() > 0, name_, ": refresh_compute_copy without enable_compute_copy");
  CUTRAIN_CHECK(params.total() > 0 && params.layout() == *layout_, name_,
                ": refresh_compute_copy got an arena of another layout");
  // The bits the last applied step drew (none applied yet: step 0's), so a resumed run's copy
  // equals the uninterrupted run's.
  const auto t = static_cast<std::uint64_t>(applied_steps());
  const rules::Half kind =
      copy_options_.precision == Precision::kFp16 ? rules::Half::kFp16 : rules::Half::kBf16;
  const bool stochastic = copy_options_.rounding == Rounding::kStochastic;
  const std::vector<float> values = params.to_host();
  std::vector<std::uint16_t> half(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    half[i] = rules::to_half(kind, values[i], stochastic,
                             stochastic ? rules::rounding_bits(copy_options_.seed, t, i) : 0U);
  copy_bytes(copy_.data(), device_, half.data(), Device::cpu(), half.size() * sizeof(half[0]));
}

}  // namespace cutrain::optim
