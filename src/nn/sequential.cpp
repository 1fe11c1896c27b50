#include "cutrain/nn/sequential.hpp"

#include <optional>

#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/layers.hpp"
#include "src/cuda/runtime.hpp"
#include "src/nn/default_init.hpp"
#include "src/nn/fusion.hpp"
#include "src/nn/sequential_state.hpp"

namespace cutrain::nn {

Sequential::Sequential(std::int64_t input_features) : input_features_(input_features) {
  CUTRAIN_CHECK(input_features > 0, "Sequential: input_features = ", input_features,
                " must be positive");
}
Sequential::~Sequential() = default;
Sequential::Sequential(Sequential&&) noexcept = default;
Sequential& Sequential::operator=(Sequential&&) noexcept = default;

Sequential& Sequential::add(std::unique_ptr<Layer> layer) {
  CUTRAIN_CHECK(layer != nullptr, "Sequential::add: null layer");
  CUTRAIN_CHECK(!built(), "Sequential::add after build(): add every layer first");
  layers_.push_back(std::move(layer));
  return *this;
}

bool Sequential::built() const {
  return state_ != nullptr;
}

void Sequential::build(Device device, std::uint64_t seed) {
  CUTRAIN_CHECK(!layers_.empty(), "Sequential::build: the model has no layers; add() some first");
  CUTRAIN_CHECK(!built(), "Sequential::build called twice");
  require_usable(device);
  widths_ = {input_features_};
  shapes_ = {Shape{input_features_}};
  ArenaLayout::Builder params, buffers;
  layer_params_.assign(layers_.size(), {});
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    try {
      shapes_.push_back(layers_[i]->output_shape(shapes_.back()));
    } catch (const Error& e) {  // Note [layer shapes]: say which layer of the model refused
      std::string why = e.what();
      if (why.starts_with("cutrain: ")) why.erase(0, 9);
      const Shape input = shapes_.back();
      shapes_.clear();
      widths_.clear();
      CUTRAIN_FAIL("Sequential: layer ", i, " (", layers_[i]->kind(),
                   ") cannot take input of shape ", shape_str(input), ": ", why);
    }
    CUTRAIN_CHECK(numel(shapes_.back()) > 0, "Sequential: layer ", i, " (", layers_[i]->kind(),
                  ") gives an empty output of shape ", shape_str(shapes_.back()));
    widths_.push_back(numel(shapes_.back()));
    Declarations d;
    layers_[i]->declare(d);
    for (const auto& p : d.parameters())
      layer_params_[i].push_back(params.add(tensor_name(i, p.name), p.shape, p.group));
    for (const auto& b : d.buffers()) buffers.add(tensor_name(i, b.name), b.shape);
  }
  auto state = std::make_unique<State>();
  state->parameters = Arena(params.build(), device);
  state->gradients = state->parameters.like();
  state->buffers = Arena(buffers.build(), device);
  state->res.device = device;
  state->res.parameters = &state->parameters;
  state->res.gradients = &state->gradients;
  state->res.buffers = &state->buffers;
  state->res.workspaces.assign(layers_.size(), nullptr);
  state->res.shapes = shapes_;
  state->res.seed = seed;
  state->res.replica = replica_;
  state->res.training_rows = training_rows_;
  state->res.batch_sum = batch_sum_;
#if CUTRAIN_WITH_CUDA
  if (device.is_cuda()) {
    state->cublas = std::make_unique<cutrain::detail::CublasHandle>(device.ordinal());
    state->res.cublas = state->cublas->get();
    state->lt = std::make_unique<cutrain::detail::LtMatmul>(device.ordinal());
    state->res.lt = state->lt.get();
  }
#endif
  // Note [forward count in device memory]: the count of training forwards, kept where the
  // kernels run when a layer reads it there. Sequential::forward advances it with a one-thread
  // launch at the end of each training pass - in the stream's order, so a forward captured in a
  // CUDA graph advances it on every replay and the next replay's masks are new ones - and
  // set_training_forward_count writes it. The host keeps its own copy (training_forward_count,
  // read without a sync); a caller that replays a captured forward says so
  // (count_replayed_forward) to keep the two equal. One count for the model, not one per layer.
  bool device_step = false;
  for (const auto& layer : layers_) device_step = device_step || layer->reads_device_step();
  if (device_step) {
    state->forward_count = Buffer(sizeof(std::uint64_t), device);
    copy_bytes(state->forward_count.data(), device, &training_steps_, Device::cpu(),
               sizeof(training_steps_));
    state->res.forward_count = state->forward_count.as<std::uint64_t>();
  }
  state_ = std::move(state);
  seed_ = seed;
  std::optional<cutrain::detail::cuda::DeviceGuard> guard;
  if (device.is_cuda()) guard.emplace(device.ordinal());
  choose_default_inits(layers_);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    LayerContext ctx(state_->res, i, training_, 0);
    layers_[i]->initialize(ctx, seed);
  }
  state_->parameters.layout();  // built
}

// Buffers only grow (Caffe's Reshape): a smaller batch - an epoch's last, an evaluation's -
// runs in the larger one's buffers, so alternating sizes allocate nothing (each cudaFree
// synchronizes the device) and pointers a captured CUDA graph holds stay valid until a batch
// larger than any before (allocation_generation()).
void Sequential::ensure_batch(std::int64_t batch) {
  State& s = *state_;
  if (batch <= s.batch) return;
  ++allocations_;
  s.activations.clear();
  s.workspaces.clear();
  std::int64_t widest = 0;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    s.activations.emplace_back(static_cast<std::size_t>(batch * widths_[i + 1]) * sizeof(float),
                               s.res.device);
    const std::size_t ws = layers_[i]->workspace_floats(batch, shapes_[i]);
    s.workspaces.emplace_back(ws * sizeof(float), s.res.device);
    s.res.workspaces[i] = s.workspaces.back().as<float>();
    widest = std::max(widest, widths_[i]);
  }
  const auto grad_bytes = static_cast<std::size_t>(batch * widest) * sizeof(float);
  if (is_half(precision_)) {
    s.input16 =
        Buffer(static_cast<std::size_t>(batch * widths_.front()) * sizeof(float), s.res.device);
    s.grad16 =
        Buffer(static_cast<std::size_t>(batch * widths_.back()) * sizeof(float), s.res.device);
  }
  s.grad_a = Buffer(grad_bytes, s.res.device);
  s.grad_b = Buffer(grad_bytes, s.res.device);
  s.batch = batch;
}

const Matrix& Sequential::forward(const Matrix& x, NativeStream stream) {
  CUTRAIN_CHECK(built(), "Sequential::forward before build()");
  CUTRAIN_CHECK(x.rows > 0, "Sequential::forward: a batch of ", x.rows, " rows (at least 1)");
  CUTRAIN_CHECK(x.cols == input_features_, "Sequential::forward: the model expects ",
                input_features_, " input features but the batch has ", x.cols);
  CUTRAIN_CHECK(x.device == device(), "Sequential::forward: the batch is on ", x.device.str(),
                " but the model is on ", device().str());
  CUTRAIN_CHECK(x.data != nullptr, "Sequential::forward: null input");
  CUTRAIN_CHECK(!training_ || training_rows_ == 0 || x.rows <= training_rows_,
                "Sequential::forward: a training batch of ", x.rows,
                " rows, more than the model is set for (set_training_rows(", training_rows_, "))");
  State& s = *state_;
  std::optional<cutrain::detail::cuda::DeviceGuard> guard;
  if (s.res.device.is_cuda()) guard.emplace(s.res.device.ordinal());
  ensure_batch(x.rows);
  s.res.stream = stream;
#if CUTRAIN_WITH_CUDA
  if (s.cublas) s.cublas->set_stream(stream);
#endif
  s.input = x;
  // Note [16-bit values in fp32 storage]: the parameters and the input rounded to 16 bits,
  // then each layer's output.
  const bool half = is_half(precision_);
  const rules::Half kind = half_format(precision_);
  auto round = [&](const Matrix& m) {
    backend::round_half(s.res.exec(), kind, m.data, m.data, m.size());
  };
  if (half) {
    // Note [16-bit compute copy]: a training forward reads the step's rounding of the master.
    if (training_ && parameter_copy_ != nullptr) {
      backend::widen_half(s.res.exec(), kind, parameter_copy_->as<std::uint16_t>(),
                          s.compute.data(), s.parameters.total());
    } else {
      CUTRAIN_CHECK(!training_ || rounding_ == Rounding::kNearestEven,
                    "Sequential::forward: the model's parameters round stochastically, which "
                    "the optimizer's fused step does: attach its compute copy "
                    "(set_parameter_copy; Trainer::fit does) or set_rounding(kNearestEven)");
      backend::round_half(s.res.exec(), kind, s.parameters.data(), s.compute.data(),
                          s.parameters.total());
    }
    s.input = {s.input16.as<float>(), x.rows, x.cols, x.device};
    backend::round_half(s.res.exec(), kind, x.data, s.input.data, x.size());
  }
  Matrix in = s.input;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Matrix out{s.activations[i].as<float>(), x.rows, widths_[i + 1], x.device};
    // Only training passes advance the layers' step (dropout's stream position): evaluating
    // between epochs must not change the masks training draws next.
    LayerContext ctx(s.res, i, training_, training_steps_);
    if (detail::linear_relu_at(layers_, i, s.res.device.is_cuda() && s.res.lt != nullptr)) {
      // Note [Linear and ReLU in one GEMM]: the Linear writes the ReLU's output; the ReLU's own
      // forward is skipped (its input, this Linear's output, may then stay unwritten).
      Matrix relu_out{s.activations[i + 1].as<float>(), x.rows, widths_[i + 2], x.device};
      static_cast<Linear&>(*layers_[i]).forward_relu(ctx, in, out, relu_out);
      if (half) round(relu_out);  // relu(round(z)) == round(relu(z)): one rounding suffices
      in = relu_out;
      ++i;
      continue;
    }
    if (detail::batchnorm_relu_at(layers_, i)) {
      // Note [BatchNorm2d and ReLU in one pass]: the BatchNorm2d writes the ReLU's output.
      Matrix relu_out{s.activations[i + 1].as<float>(), x.rows, widths_[i + 2], x.device};
      static_cast<BatchNorm2d&>(*layers_[i]).forward_relu(ctx, in, relu_out);
      if (half && !layers_[i]->keeps_16bit_values(false)) round(relu_out);
      in = relu_out;
      ++i;
      continue;
    }
    layers_[i]->forward(ctx, in, out);
    if (half && !layers_[i]->keeps_16bit_values(false)) round(out);
    in = out;
  }
  ++steps_;
  if (training_) {
    ++training_steps_;
    if (s.res.forward_count != nullptr) backend::count_forward(s.res.exec(), s.res.forward_count);
  }
  s.output = in;
  s.forward_batch = x.rows;
  return s.output;
}

void Sequential::backward(const Matrix& dy, NativeStream stream, Matrix* dx_input) {
  backward(dy, stream, dx_input, {});
}

void Sequential::backward(const Matrix& dy, NativeStream stream, Matrix* dx_input,
                          const std::function<void(std::size_t)>& layer_done) {
  CUTRAIN_CHECK(built() && state_->forward_batch > 0, "Sequential::backward before forward()");
  State& s = *state_;
  CUTRAIN_CHECK(dy.rows == s.forward_batch && dy.cols == widths_.back(),
                "Sequential::backward: the gradient is [", dy.rows, ", ", dy.cols,
                "] but the last forward produced [", s.forward_batch, ", ", widths_.back(), "]");
  if (dx_input != nullptr)
    CUTRAIN_CHECK(dx_input->rows == dy.rows && dx_input->cols == input_features_ &&
                      dx_input->device == dy.device && dx_input->data != nullptr,
                  "Sequential::backward: the input gradient must be [", dy.rows, ", ",
                  input_features_, "] on ", dy.device.str());
  std::optional<cutrain::detail::cuda::DeviceGuard> guard;
  if (s.res.device.is_cuda()) guard.emplace(s.res.device.ordinal());
  s.res.stream = stream;
#if CUTRAIN_WITH_CUDA
  if (s.cublas) s.cublas->set_stream(stream);
#endif
  Matrix grad = dy;
  // Note [16-bit values in fp32 storage]: the incoming gradient rounded to 16 bits (into the
  // model's own buffer: the caller's stays as it is), then each layer's input gradient.
  const bool half = is_half(precision_);
  const rules::Half kind = half_format(precision_);
  if (half) {
    grad.data = s.grad16.as<float>();
    backend::round_half(s.res.exec(), kind, dy.data, grad.data, dy.size());
  }
  // Only a layer with parameters below it (or the caller's dx) needs a layer's input gradient:
  // the layers up to the first with parameters - the default CNN's Unflatten, a Conv2d's input -
  // are not run backward, and that first one writes no input gradient.
  std::size_t first = 0;
  if (dx_input == nullptr)
    while (first + 1 < layers_.size() && layer_params_[first].empty()) ++first;
  for (std::size_t k = layers_.size(); k-- > first;) {
    // Note [BatchNorm2d and ReLU in one pass]: the ReLU at k and the BatchNorm2d at j = k - 1
    // as one, from the ReLU's output and the gradient above it.
    const bool fused = k > first && detail::batchnorm_relu_at(layers_, k - 1);
    const std::size_t j = fused ? k - 1 : k;  // the layer whose input gradient is written
    Matrix x =
        j == 0 ? s.input : Matrix{s.activations[j - 1].as<float>(), dy.rows, widths_[j], dy.device};
    Matrix y{s.activations[k].as<float>(), dy.rows, widths_[k + 1], dy.device};
    // Ping-pong: the gradient buffer the incoming gradient is not in.
    float* target = grad.data == s.grad_a.as<float>() ? s.grad_b.as<float>() : s.grad_a.as<float>();
    Matrix dx{target, dy.rows, widths_[j], dy.device};
    if (j == 0) dx.data = dx_input != nullptr ? dx_input->data : nullptr;
    if (j == first && dx_input == nullptr) dx.data = nullptr;
    LayerContext ctx(s.res, j, training_, training_steps_ > 0 ? training_steps_ - 1 : 0);
    if (fused)
      static_cast<BatchNorm2d&>(*layers_[j]).backward_relu(ctx, x, y, grad, dx);
    else
      layers_[k]->backward(ctx, x, y, grad, dx);
    if (half && dx.data != nullptr && !layers_[j]->keeps_16bit_values(true))
      backend::round_half(s.res.exec(), kind, dx.data, dx.data, dx.size());
    grad = dx;
    if (layer_done) {
      layer_done(k);
      if (fused) layer_done(j);
    }
    k = j;
  }
  if (layer_done)
    for (std::size_t k = first; k-- > 0;) layer_done(k);  // nothing to compute: done
}

void Sequential::set_training_forward_count(std::uint64_t n) {
  training_steps_ = n;
  if (!state_ || state_->res.forward_count == nullptr) return;
  // After the forwards already issued (Note [read after the writing stream], optimizer.cpp): a
  // plain copy runs on the legacy default stream, which does not wait for the model's.
  if (state_->res.device.is_cuda() && state_->res.stream != nullptr)
    cutrain::detail::cuda::stream_synchronize(state_->res.stream, state_->res.device.ordinal());
  copy_bytes(state_->forward_count.data(), state_->res.device, &n, Device::cpu(), sizeof(n));
}

void Sequential::count_replayed_forward() {
  ++steps_;
  ++training_steps_;
}

void Sequential::set_seed(std::uint64_t seed) {
  seed_ = seed;
  if (state_) state_->res.seed = seed;
}

void Sequential::set_replica(int rank, int world) {
  CUTRAIN_CHECK(world >= 1 && rank >= 0 && rank < world, "Sequential::set_replica: rank ", rank,
                " of world ", world, " is invalid");
  replica_ = {.rank = rank, .world = world};
  if (state_) state_->res.replica = replica_;
}

void Sequential::set_training_rows(std::int64_t rows) {
  CUTRAIN_CHECK(rows >= 0, "Sequential::set_training_rows: ", rows, " rows (0: unset)");
  training_rows_ = rows;
  if (state_) state_->res.training_rows = rows;
}

void Sequential::set_batch_statistics_sum(RankSum sum) {
  batch_sum_ = std::move(sum);
  if (state_) state_->res.batch_sum = batch_sum_;
}

Arena& Sequential::parameters() {
  CUTRAIN_CHECK(built(), "Sequential: build() first");
  return state_->parameters;
}
Arena& Sequential::gradients() {
  CUTRAIN_CHECK(built(), "Sequential: build() first");
  return state_->gradients;
}
Arena& Sequential::buffers() {
  CUTRAIN_CHECK(built(), "Sequential: build() first");
  return state_->buffers;
}
std::int64_t Sequential::output_features() const {
  CUTRAIN_CHECK(!widths_.empty(), "Sequential: build() first");
  return widths_.back();
}
Device Sequential::device() const {
  CUTRAIN_CHECK(built(), "Sequential: build() first");
  return state_->res.device;
}

}  // namespace cutrain::nn
