// Residual (include/cutrain/nn/residual.hpp): y = x + body(x), the body run as a Sequential runs
// its layers, each with a nested LayerContext (its tensors "layers.{i}.body.{j}.*", its own
// workspace and shapes), all of its buffers carved out of the Residual's one workspace.
#include "cutrain/nn/residual.hpp"

#include <algorithm>

#include "cutrain/error.hpp"
#include "src/nn/context.hpp"
#include "src/nn/default_init.hpp"
#include "src/nn/fusion.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn {
namespace {

constexpr const char* kScope = "body";
// Each piece of the workspace starts on a 256-byte boundary (16-byte vector loads, cuBLAS).
constexpr std::size_t kAlignFloats = 64;

}  // namespace

Residual& Residual::add(std::unique_ptr<Layer> layer) {
  CUTRAIN_CHECK(layer != nullptr, "Residual::add: null layer");
  CUTRAIN_CHECK(shapes_.empty(), "Residual::add after the model's build: add every layer first");
  body_.push_back(std::move(layer));
  return *this;
}

std::string Residual::torch_args() const {
  return "{\"body\": " + detail::modules_json(body_) + "}";
}

void Residual::declare(Declarations& d) const {
  for (std::size_t j = 0; j < body_.size(); ++j) {
    Declarations inner;
    body_[j]->declare(inner);
    const std::string prefix = std::string(kScope) + "." + std::to_string(j) + ".";
    for (const auto& p : inner.parameters()) d.parameter(prefix + p.name, p.shape, p.group);
    for (const auto& b : inner.buffers()) d.buffer(prefix + b.name, b.shape);
  }
}

Shape Residual::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(!body_.empty(), "Residual: the body has no layers (add() some)");
  std::vector<Shape> shapes{input};
  for (std::size_t j = 0; j < body_.size(); ++j) {
    try {
      shapes.push_back(body_[j]->output_shape(shapes.back()));
    } catch (const Error& e) {  // say which body layer refused (Note [layer shapes])
      std::string why = e.what();
      if (why.starts_with("cutrain: ")) why.erase(0, 9);
      CUTRAIN_FAIL("body layer ", j, " (", body_[j]->kind(), ") cannot take input of shape ",
                   shape_str(shapes.back()), ": ", why);
    }
    CUTRAIN_CHECK(numel(shapes.back()) > 0, "body layer ", j, " (", body_[j]->kind(),
                  ") gives an empty output of shape ", shape_str(shapes.back()));
  }
  CUTRAIN_CHECK(shapes.back() == input, "the body maps ", shape_str(input), " to ",
                shape_str(shapes.back()),
                ": x + body(x) needs the body to keep the shape (change it outside the Residual)");
  shapes_ = std::move(shapes);
  plan_batch_ = -1;  // the kept plan was made for the old shapes
  return input;
}

const Residual::Plan& Residual::plan(std::int64_t batch) const {
  if (batch == plan_batch_) return plan_;
  Plan p;
  auto take = [&](std::size_t floats) {
    const std::size_t at = p.total;
    p.total += (floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    return at;
  };
  const auto rows = static_cast<std::size_t>(batch);
  std::int64_t widest = 0;
  for (std::size_t j = 0; j < body_.size(); ++j) {
    p.output.push_back(take(rows * static_cast<std::size_t>(numel(shapes_[j + 1]))));
    p.workspace.push_back(take(body_[j]->workspace_floats(batch, shapes_[j])));
    widest = std::max(widest, numel(shapes_[j]));
  }
  p.grad_a = take(rows * static_cast<std::size_t>(widest));
  p.grad_b = take(rows * static_cast<std::size_t>(widest));
  plan_ = std::move(p);
  plan_batch_ = batch;
  return plan_;
}

std::size_t Residual::workspace_floats(std::int64_t batch, const Shape& input) const {
  if (shapes_.empty() || shapes_.front() != input) (void)output_shape(input);
  return plan(batch).total;
}

bool Residual::reads_device_step() const {
  return std::any_of(body_.begin(), body_.end(),
                     [](const auto& layer) { return layer->reads_device_step(); });
}

void Residual::initialize(LayerContext& ctx, std::uint64_t seed) {
  CUTRAIN_CHECK(!shapes_.empty(), "Residual::initialize before the model's build");
  choose_default_inits(body_);
  for (std::size_t j = 0; j < body_.size(); ++j) {
    LayerContext inner = ctx.nested(kScope, j, nullptr, shapes_[j], shapes_[j + 1]);
    body_[j]->initialize(inner, seed);
  }
}

// Note [16-bit values in fp32 storage]: in bf16 / fp16 each body layer's output and input
// gradient is rounded as Sequential rounds its layers'; the sum x + body(x) and dy + dbody are
// rounded by the Sequential around the Residual.
void Residual::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const Plan& p = plan(x.rows);
  float* ws = ctx.workspace();
  const backend::Exec e = exec_of(ctx);
  const bool half = is_half(e.precision);
  Matrix in = x;
  for (std::size_t j = 0; j < body_.size(); ++j) {
    LayerContext inner = ctx.nested(kScope, j, ws + p.workspace[j], shapes_[j], shapes_[j + 1]);
    // Note [BatchNorm2d and ReLU in one pass]: the BatchNorm2d writes the ReLU's output.
    const bool fused = detail::batchnorm_relu_at(body_, j);
    const std::size_t last = fused ? j + 1 : j;
    Matrix out{ws + p.output[last], x.rows, numel(shapes_[last + 1]), x.device};
    if (fused)
      static_cast<BatchNorm2d&>(*body_[j]).forward_relu(inner, in, out);
    else
      body_[j]->forward(inner, in, out);
    if (half && !body_[j]->keeps_16bit_values(false))  // fused: the BatchNorm's
      backend::round_half(e, half_format(e.precision), out.data, out.data, out.size());
    in = out;
    j = last;
  }
  backend::add(e, x.data, in.data, y.data, y.size());
}

void Residual::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                        Matrix& dx) {
  const Plan& p = plan(dy.rows);
  float* ws = ctx.workspace();
  const backend::Exec e = exec_of(ctx);
  const bool half = is_half(e.precision);
  Matrix grad = dy;
  for (std::size_t k = body_.size(); k-- > 0;) {
    // Note [BatchNorm2d and ReLU in one pass]: the ReLU at k and the BatchNorm2d at j = k - 1.
    const bool fused = k > 0 && detail::batchnorm_relu_at(body_, k - 1);
    const std::size_t j = fused ? k - 1 : k;  // the layer whose input gradient is written
    const Matrix in =
        j == 0 ? x : Matrix{ws + p.output[j - 1], dy.rows, numel(shapes_[j]), dy.device};
    const Matrix out{ws + p.output[k], dy.rows, numel(shapes_[k + 1]), dy.device};
    // Ping-pong: the buffer the incoming gradient is not in (the last layer reads dy).
    float* target = grad.data == ws + p.grad_a ? ws + p.grad_b : ws + p.grad_a;
    Matrix dx_k{j == 0 ? dx.data : target, dy.rows, numel(shapes_[j]), dy.device};
    LayerContext inner = ctx.nested(kScope, j, ws + p.workspace[j], shapes_[j], shapes_[j + 1]);
    if (fused)
      static_cast<BatchNorm2d&>(*body_[j]).backward_relu(inner, in, out, grad, dx_k);
    else
      body_[k]->backward(inner, in, out, grad, dx_k);
    if (half && dx_k.data != nullptr && !body_[j]->keeps_16bit_values(true))
      backend::round_half(e, half_format(e.precision), dx_k.data, dx_k.data, dx_k.size());
    grad = dx_k;
    k = j;
  }
  // d(x + body(x))/dx: the shortcut passes dy through.
  if (dx.data != nullptr) backend::add(e, dx.data, dy.data, dx.data, dx.size());
}

namespace {

void visit(const Layer& layer, const Shape& input, const std::string& at,
           const std::function<void(const Layer&, const Shape&, const std::string&)>& f) {
  f(layer, input, at);
  if (const auto* r = dynamic_cast<const Residual*>(&layer))
    for (std::size_t j = 0; j < r->size(); ++j)
      visit(r->layer(j), r->shape(j), at + "." + kScope + "." + std::to_string(j), f);
}

}  // namespace

void for_each_layer(Sequential& model,
                    const std::function<void(const Layer&, const Shape&, const std::string&)>& f) {
  for (std::size_t i = 0; i < model.size(); ++i)
    visit(model.layer(i), model.shape(i), std::to_string(i), f);
}

}  // namespace cutrain::nn
