#include "cutrain/nn/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/error.hpp"
#include "src/nn/model_snapshot.hpp"

namespace cutrain::nn {
namespace {

std::vector<float> normal_values(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0F, 1.0F);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

void write_one(float* device_data, Device device, std::size_t i, float value) {
  copy_bytes(device_data + i, device, &value, Device::cpu(), sizeof(float));
}

std::string describe(const std::string& where, double analytic, double numeric) {
  char text[96];
  std::snprintf(text, sizeof text, ": analytic %.6g vs numeric %.6g", analytic, numeric);
  return where + text;
}

// The worst coordinate so far; a NaN ratio (a NaN gradient or output) is the worst of all.
void track(GradCheckResult& r, double ratio, const std::string& where, double analytic,
           double numeric) {
  if (r.worst.empty() || std::isnan(ratio) || ratio > r.max_error_ratio) {
    r.max_error_ratio = ratio;
    r.worst = describe(where, analytic, numeric);
  }
}

class Checker {
 public:
  Checker(Sequential& m, const GradCheckOptions& o, detail::ModelSnapshot& snapshot)
      : model_(m), o_(o), snapshot_(snapshot), device_(m.device()) {
    std::mt19937_64 rng(o.seed);
    x_host_ = normal_values(static_cast<std::size_t>(o.batch * m.input_features()), rng);
    w_ = normal_values(static_cast<std::size_t>(o.batch * m.output_features()), rng);
    x_ = Buffer(x_host_.size() * sizeof(float), device_);
    copy_bytes(x_.data(), device_, x_host_.data(), Device::cpu(), x_.bytes());
  }

  // L = sum w y in double, from the counters every forward of the check starts at.
  double loss() {
    snapshot_.hold_counters();
    const Matrix& y = model_.forward(input());
    std::vector<float> out(y.size());
    copy_bytes(out.data(), Device::cpu(), y.data, y.device, out.size() * sizeof(float));
    double sum = 0;
    for (std::size_t i = 0; i < out.size(); ++i) sum += static_cast<double>(w_[i]) * out[i];
    return sum;
  }

  // dL/dtheta and dL/dx from backward with dy = w.
  void analytic(std::vector<float>& dtheta, std::vector<float>& dx) {
    base_ = loss();
    CUTRAIN_CHECK(loss() == base_,
                  "check_gradients: two forwards of the same input gave different outputs: a "
                  "layer's forward is not a function of its input and parameters (a random draw "
                  "that does not derive from LayerContext::seed() and step()?)");
    snapshot_.hold_counters();
    model_.forward(input());
    Buffer dy(w_.size() * sizeof(float), device_), dx_buffer(x_.bytes(), device_);
    copy_bytes(dy.data(), device_, w_.data(), Device::cpu(), dy.bytes());
    Matrix dy_m{dy.as<float>(), o_.batch, model_.output_features(), device_};
    Matrix dx_m{dx_buffer.as<float>(), o_.batch, model_.input_features(), device_};
    model_.backward(dy_m, nullptr, o_.check_input ? &dx_m : nullptr);
    dtheta = model_.gradients().to_host();
    dx.assign(x_host_.size(), 0.0F);
    if (o_.check_input)
      copy_bytes(dx.data(), Device::cpu(), dx_buffer.data(), device_, dx_buffer.bytes());
  }

  // Central and one-sided differences of L in coordinate i of `data` (device; host copy
  // `saved`) with step h, measured with the steps the float coordinate actually took.
  struct Difference {
    double numeric;  // central
    double gap;      // |forward one-sided - backward one-sided|
  };
  Difference difference(float* data, std::size_t i, float saved, float h) {
    const float up_value = saved + h;
    const float down_value = saved - h;
    write_one(data, device_, i, up_value);
    const double up = loss();
    write_one(data, device_, i, down_value);
    const double down = loss();
    write_one(data, device_, i, saved);
    const double h_up = static_cast<double>(up_value) - saved;
    const double h_down = static_cast<double>(saved) - down_value;
    return {(up - down) / (h_up + h_down),
            std::fabs((up - base_) / h_up - (base_ - down) / h_down)};
  }

  double ratio(double analytic, double numeric) const {
    return std::fabs(analytic - numeric) / (o_.atol + o_.rtol * std::fabs(numeric));
  }

  // One coordinate, classified as in the header's note on kinks: compared, or skipped as a kink
  // when its error is explained by the one-sided differences disagreeing, or vanishes at a step
  // 8 times smaller (kinks on both sides of a large step).
  void coordinate(float* data, std::size_t i, float saved, double analytic,
                  const std::string& where, GradCheckResult& r) {
    const Difference d = difference(data, i, saved, o_.step);
    const double q = ratio(analytic, d.numeric);
    if (q <= 1.0) {
      ++r.checked;
      track(r, q, where, analytic, d.numeric);
      return;
    }
    if (std::isfinite(q)) {
      const double error = std::fabs(analytic - d.numeric);
      const Difference fine = difference(data, i, saved, o_.step / 8);
      if (d.gap >= error || ratio(analytic, fine.numeric) <= 1.0 ||
          fine.gap >= std::fabs(analytic - fine.numeric)) {
        ++r.kinks;
        return;
      }
    }
    ++r.checked;
    track(r, q, where, analytic, d.numeric);
    if (r.failures.size() < 20) r.failures.push_back(describe(where, analytic, d.numeric));
  }

  float* x_data() { return x_.as<float>(); }
  const std::vector<float>& x_host() const { return x_host_; }

 private:
  Matrix input() { return {x_.as<float>(), o_.batch, model_.input_features(), device_}; }

  Sequential& model_;
  const GradCheckOptions& o_;
  detail::ModelSnapshot& snapshot_;
  Device device_;
  std::vector<float> x_host_, w_;
  Buffer x_;
  double base_ = 0;
};

// The evenly spaced coordinates of a tensor of n elements tried by the check.
std::size_t stride_for(std::size_t n, std::size_t per_tensor) {
  return per_tensor == 0 ? 1 : std::max<std::size_t>(1, (n + per_tensor - 1) / per_tensor);
}

}  // namespace

GradCheckResult check_gradients(Sequential& model, const GradCheckOptions& options) {
  CUTRAIN_CHECK(model.built(), "check_gradients: build() the model first");
  CUTRAIN_CHECK(options.batch >= 1, "check_gradients: batch = ", options.batch,
                " is invalid; valid: >= 1");
  CUTRAIN_CHECK(std::isfinite(options.step) && options.step > 0,
                "check_gradients: step = ", options.step,
                " is invalid; valid: finite and > 0 (1e-2 suits float models)");
  CUTRAIN_CHECK(std::isfinite(options.rtol) && options.rtol >= 0 && std::isfinite(options.atol) &&
                    options.atol >= 0 && options.rtol + options.atol > 0,
                "check_gradients: rtol = ", options.rtol, ", atol = ", options.atol,
                " are invalid; valid: finite, >= 0, not both 0");
  detail::ModelSnapshot snapshot(model);
  Checker checker(model, options, snapshot);
  std::vector<float> dtheta, dx;
  checker.analytic(dtheta, dx);

  GradCheckResult r;
  float* params = model.parameters().data();
  const std::vector<float>& p = snapshot.params();
  for (const auto& t : model.parameters().layout().tensors())
    for (std::size_t j = 0; j < t.numel; j += stride_for(t.numel, options.per_tensor)) {
      const std::size_t i = t.offset + j;
      checker.coordinate(params, i, p[i], dtheta[i], t.name + "[" + std::to_string(j) + "]", r);
    }
  if (options.check_input) {
    const std::size_t n = checker.x_host().size();
    const auto width = static_cast<std::size_t>(model.input_features());
    for (std::size_t i = 0; i < n; i += stride_for(n, options.per_tensor))
      checker.coordinate(
          checker.x_data(), i, checker.x_host()[i], dx[i],
          "input[" + std::to_string(i / width) + ", " + std::to_string(i % width) + "]", r);
  }
  r.passed = r.failures.empty() && r.checked > 0 && r.kinks * 3 <= r.checked;
  return r;
}

}  // namespace cutrain::nn
