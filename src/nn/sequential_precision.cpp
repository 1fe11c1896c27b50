// A Sequential's precision (Note [16-bit values in fp32 storage], cutrain/precision.hpp), the
// rounding of its 16-bit parameters and the optimizer's compute copy it reads (Note [16-bit
// compute copy]).
#include <cstdint>

#include "cutrain/error.hpp"
#include "cutrain/nn/sequential.hpp"
#include "src/nn/sequential_state.hpp"
#if CUTRAIN_WITH_CUDA
#include "src/cuda/runtime.hpp"
#endif

namespace cutrain::nn {

void Sequential::set_precision(Precision precision) {
  CUTRAIN_CHECK(built(), "Sequential::set_precision: build() first");
  CUTRAIN_CHECK(precision != Precision::kTf32 || state_->res.device.is_cuda(),
                "Sequential::set_precision(tf32): TF32 is a tensor-core mode of NVIDIA GPUs; "
                "this model is on ",
                state_->res.device.str(), ", which computes in fp32");
#if CUTRAIN_WITH_CUDA
  if (state_->res.device.is_cuda()) {
    cutrain::detail::cuda::DeviceGuard guard(state_->res.device.ordinal());
    state_->cublas->set_tf32(precision == Precision::kTf32);
    state_->lt->set_precision(precision);
  }
#endif
  State& s = *state_;
  precision_ = precision;
  s.res.precision = precision;
  parameter_copy_ = nullptr;  // of the previous format
  if (!is_half(precision)) rounding_ = Rounding::kNearestEven;
  if (is_half(precision)) {
    if (s.compute.total() == 0) s.compute = s.parameters.like();
    s.res.compute = &s.compute;
    const std::int64_t batch = s.batch;
    s.batch = 0;  // the 16-bit input and gradient buffers join the others
    if (batch > 0) ensure_batch(batch);
  } else {
    s.res.compute = nullptr;
  }
  ++allocations_;  // what a captured step computes has changed
}

void Sequential::set_rounding(Rounding rounding) {
  CUTRAIN_CHECK(rounding == Rounding::kNearestEven || is_half(precision_),
                "Sequential::set_rounding: stochastic rounding is of 16-bit parameters; this "
                "model computes in ",
                precision_name(precision_), " (set_precision bf16 or fp16 first)");
  rounding_ = rounding;
}

void Sequential::set_parameter_copy(const Buffer* copy) {
  if (copy != nullptr) {
    CUTRAIN_CHECK(built() && is_half(precision_),
                  "Sequential::set_parameter_copy: a parameter copy is of a built bf16 / fp16 "
                  "model's parameters");
    CUTRAIN_CHECK(copy->bytes() == state_->parameters.total() * sizeof(std::uint16_t) &&
                      copy->device() == state_->res.device,
                  "Sequential::set_parameter_copy: the copy holds ", copy->bytes(), " bytes on ",
                  copy->device().str(), "; the model's ", state_->parameters.total(),
                  " parameters in 16 bits are ", state_->parameters.total() * sizeof(std::uint16_t),
                  " bytes on ", state_->res.device.str());
  }
  parameter_copy_ = copy;
}

}  // namespace cutrain::nn
