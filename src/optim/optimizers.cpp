// Construction (validation, state allocation) and launch of each optimizer. The math is in
// kernels/optim/<name>.cuh; the backend choice in src/optim/dispatch.hpp.
#include <cmath>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/optim/adagrad.hpp"
#include "cutrain/optim/adam.hpp"
#include "cutrain/optim/rmsprop.hpp"
#include "cutrain/optim/sgd.hpp"
#include "kernels/optim/adagrad.cuh"
#include "kernels/optim/adam.cuh"
#include "kernels/optim/rmsprop.cuh"
#include "kernels/optim/sgd.cuh"
#include "src/optim/dispatch.hpp"

namespace cutrain::optim {
namespace {

bool finite_nonneg(float x) {
  return std::isfinite(x) && x >= 0;
}
bool unit_interval(float x) {
  return std::isfinite(x) && x >= 0 && x < 1;
}  // [0, 1)

template <class Rule>
kernels::StepArgs<Rule> make_args(const detail::StepLaunch& l,
                                  const std::vector<detail::GroupValues>& groups,
                                  const typename Rule::Hyper& hyper) {
  kernels::StepArgs<Rule> a;
  a.params = l.params->data();
  a.grads = l.grads->data();
  a.hyper = hyper;
  a.num_groups = static_cast<int>(groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i)
    a.groups[i] = {groups[i].begin, groups[i].end, groups[i].weight_decay};
  a.grad_scale = l.guard.grad_scale;
  a.skip = l.guard.skip;
  a.control = l.control;
  a.copy.data = l.copy.data;
  a.copy.kind = l.copy.precision == Precision::kFp16 ? rules::Half::kFp16 : rules::Half::kBf16;
  a.copy.stochastic = l.copy.rounding == Rounding::kStochastic;
  a.copy.seed = l.copy.seed;
  a.norm = {static_cast<rules::NormPartial*>(l.norm.partials),
            l.norm.done_count,
            static_cast<rules::ClipResult*>(l.norm.result),
            l.norm.norm_out,
            l.norm.max_norm,
            l.norm.l2,
            l.norm.n,
            l.norm.replicated};
  return a;
}

float* data_or_null(Arena* a) {
  return a != nullptr ? a->data() : nullptr;
}

}  // namespace

// ---- SGD ---------------------------------------------------------------------------------------
Sgd::Sgd(const Arena& params, const SgdOptions& o)
    : Optimizer("SGD", params, o.lr, o.weight_decay), options_(o) {
  check_hyper(finite_nonneg(o.momentum), "SGD", "momentum", o.momentum, "finite and >= 0");
  check_hyper(std::isfinite(o.dampening) && o.dampening >= 0 && o.dampening <= 1, "SGD",
              "dampening", o.dampening, "[0, 1]");
  CUTRAIN_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
                "SGD: nesterov = true requires momentum > 0 and dampening = 0 (got momentum = ",
                o.momentum, ", dampening = ", o.dampening, ")");
  if (o.momentum != 0) buffer_ = &add_state("momentum_buffer");
}

void Sgd::run(const detail::StepLaunch& l) {
  auto a = make_args<rules::Sgd>(
      l, group_values(),
      {options_.momentum, options_.dampening, options_.nesterov, options_.maximize});
  a.state[0] = data_or_null(buffer_);
  run_step(device(), a, l.stream);
}

// ---- AdaGrad -----------------------------------------------------------------------------------
Adagrad::Adagrad(const Arena& params, const AdagradOptions& o)
    : Optimizer("Adagrad", params, o.lr, o.weight_decay), options_(o) {
  check_hyper(finite_nonneg(o.lr_decay), "Adagrad", "lr_decay", o.lr_decay, "finite and >= 0");
  check_hyper(finite_nonneg(o.initial_accumulator_value), "Adagrad", "initial_accumulator_value",
              o.initial_accumulator_value, "finite and >= 0");
  check_hyper(std::isfinite(o.eps) && o.eps > 0, "Adagrad", "eps", o.eps, "finite and > 0");
  sum_ = &add_state("sum");
  if (o.initial_accumulator_value != 0)
    sum_->from_host(std::vector<float>(sum_->total(), o.initial_accumulator_value));
}

void Adagrad::run(const detail::StepLaunch& l) {
  auto a = make_args<rules::Adagrad>(l, group_values(),
                                     {options_.lr_decay, options_.eps, options_.maximize});
  a.state[0] = sum_->data();
  run_step(device(), a, l.stream);
}

// ---- RMSProp -----------------------------------------------------------------------------------
Rmsprop::Rmsprop(const Arena& params, const RmspropOptions& o)
    : Optimizer("RMSprop", params, o.lr, o.weight_decay), options_(o) {
  check_hyper(unit_interval(o.alpha), "RMSprop", "alpha", o.alpha, "[0, 1)");
  check_hyper(std::isfinite(o.eps) && o.eps > 0, "RMSprop", "eps", o.eps, "finite and > 0");
  check_hyper(finite_nonneg(o.momentum), "RMSprop", "momentum", o.momentum, "finite and >= 0");
  CUTRAIN_CHECK(!o.nesterov || o.momentum > 0,
                "RMSprop: nesterov = true requires momentum > 0 (got momentum = ", o.momentum, ")");
  square_avg_ = &add_state("square_avg");
  if (o.centered) grad_avg_ = &add_state("grad_avg");
  if (o.momentum > 0) buffer_ = &add_state("momentum_buffer");
}

void Rmsprop::run(const detail::StepLaunch& l) {
  auto a = make_args<rules::Rmsprop>(l, group_values(),
                                     {options_.alpha, options_.eps, options_.momentum,
                                      options_.centered, options_.nesterov, options_.maximize});
  a.state[0] = square_avg_->data();
  a.state[1] = data_or_null(grad_avg_);
  a.state[2] = data_or_null(buffer_);
  run_step(device(), a, l.stream);
}

// ---- Adam / AdamW ------------------------------------------------------------------------------
Adam::Adam(const Arena& params, const AdamOptions& options) : Adam(params, options, false) {}

Adam::Adam(const Arena& params, const AdamOptions& o, bool decoupled)
    : Optimizer(decoupled ? "AdamW" : "Adam", params, o.lr, o.weight_decay),
      options_(o),
      decoupled_(decoupled) {
  const char* n = decoupled ? "AdamW" : "Adam";
  check_hyper(unit_interval(o.beta1), n, "beta1", o.beta1, "[0, 1)");
  check_hyper(unit_interval(o.beta2), n, "beta2", o.beta2, "[0, 1)");
  check_hyper(std::isfinite(o.eps) && o.eps > 0, n, "eps", o.eps, "finite and > 0");
  exp_avg_ = &add_state("exp_avg");
  exp_avg_sq_ = &add_state("exp_avg_sq");
  if (o.amsgrad) max_exp_avg_sq_ = &add_state("max_exp_avg_sq");
}

void Adam::run(const detail::StepLaunch& l) {
  auto a = make_args<rules::Adam>(l, group_values(),
                                  {options_.beta1, options_.beta2, options_.eps, options_.amsgrad,
                                   options_.maximize, decoupled_});
  a.state[0] = exp_avg_->data();
  a.state[1] = exp_avg_sq_->data();
  a.state[2] = data_or_null(max_exp_avg_sq_);
  run_step(device(), a, l.stream);
}

AdamW::AdamW(const Arena& params, const AdamOptions& options) : Adam(params, options, true) {}

}  // namespace cutrain::optim
