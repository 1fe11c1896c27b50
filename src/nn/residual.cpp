// Residual (include/cutrain/nn/residual.hpp): y = x + body(x) or shortcut(x) + body(x), each
// branch run as a Sequential runs its layers, each layer with a nested LayerContext (its tensors
// "layers.{i}.body.{j}.*" / "layers.{i}.shortcut.{j}.*", its own workspace and shapes), all of
// the buffers carved out of the Residual's one workspace.
#include "cutrain/nn/residual.hpp"

#include <algorithm>

#include "cutrain/error.hpp"
#include "src/nn/context.hpp"
#include "src/nn/default_init.hpp"
#include "src/nn/fusion.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn {
namespace {

// Each piece of the workspace starts on a 256-byte boundary (16-byte vector loads, cuBLAS).
constexpr std::size_t kAlignFloats = 64;

}  // namespace

Residual& Residual::add(std::unique_ptr<Layer> layer) {
  CUTRAIN_CHECK(layer != nullptr, "Residual::add: null layer");
  CUTRAIN_CHECK(body_.shapes.empty(),
                "Residual::add after the model's build: add every layer first");
  body_.layers.push_back(std::move(layer));
  return *this;
}

Residual& Residual::add_shortcut(std::unique_ptr<Layer> layer) {
  CUTRAIN_CHECK(layer != nullptr, "Residual::add_shortcut: null layer");
  CUTRAIN_CHECK(body_.shapes.empty(),
                "Residual::add_shortcut after the model's build: add every layer first");
  shortcut_.layers.push_back(std::move(layer));
  return *this;
}

std::string Residual::torch_args() const {
  std::string args = "{\"body\": " + detail::modules_json(body_.layers);
  if (!shortcut_.layers.empty())
    args += ", \"shortcut\": " + detail::modules_json(shortcut_.layers);
  return args + "}";
}

void Residual::declare(Declarations& d) const {
  for (const Branch* b : {&body_, &shortcut_})
    for (std::size_t j = 0; j < b->layers.size(); ++j) {
      Declarations inner;
      b->layers[j]->declare(inner);
      const std::string prefix = std::string(b->scope) + "." + std::to_string(j) + ".";
      for (const auto& p : inner.parameters()) d.parameter(prefix + p.name, p.shape, p.group);
      for (const auto& buf : inner.buffers()) d.buffer(prefix + buf.name, buf.shape);
    }
}

Shape Residual::output_shape(const Shape& input) const {
  CUTRAIN_CHECK(!body_.layers.empty(), "Residual: the body has no layers (add() some)");
  for (const Branch* b : {&body_, &shortcut_}) {
    std::vector<Shape> shapes{input};
    for (std::size_t j = 0; j < b->layers.size(); ++j) {
      const Layer& layer = *b->layers[j];
      try {
        shapes.push_back(layer.output_shape(shapes.back()));
      } catch (const Error& e) {  // say which branch layer refused (Note [layer shapes])
        std::string why = e.what();
        if (why.starts_with("cutrain: ")) why.erase(0, 9);
        CUTRAIN_FAIL(b->scope, " layer ", j, " (", layer.kind(), ") cannot take input of shape ",
                     shape_str(shapes.back()), ": ", why);
      }
      CUTRAIN_CHECK(numel(shapes.back()) > 0, b->scope, " layer ", j, " (", layer.kind(),
                    ") gives an empty output of shape ", shape_str(shapes.back()));
    }
    b->shapes = std::move(shapes);
  }
  const Shape& out = body_.shapes.back();
  if (shortcut_.layers.empty())
    CUTRAIN_CHECK(out == input, "the body maps ", shape_str(input), " to ", shape_str(out),
                  ": x + body(x) needs the body to keep the shape (change it outside the "
                  "Residual, or give the block a projection shortcut: add_shortcut)");
  else
    CUTRAIN_CHECK(out == shortcut_.shapes.back(), "the body maps ", shape_str(input), " to ",
                  shape_str(out), " but the shortcut to ", shape_str(shortcut_.shapes.back()),
                  ": shortcut(x) + body(x) needs one shape");
  plan_batch_ = -1;  // the kept plan was made for the old shapes
  return out;
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
  for (int b = 0; b < 2; ++b) {
    const Branch& br = b == 0 ? body_ : shortcut_;
    for (std::size_t j = 0; j < br.layers.size(); ++j) {
      p.output[b].push_back(take(rows * static_cast<std::size_t>(numel(br.shapes[j + 1]))));
      p.workspace[b].push_back(take(br.layers[j]->workspace_floats(batch, br.shapes[j])));
      widest = std::max(widest, numel(br.shapes[j]));
    }
  }
  p.grad_a = take(rows * static_cast<std::size_t>(widest));
  p.grad_b = take(rows * static_cast<std::size_t>(widest));
  if (!shortcut_.layers.empty())
    p.grad_x = take(rows * static_cast<std::size_t>(numel(body_.shapes.front())));
  plan_ = std::move(p);
  plan_batch_ = batch;
  return plan_;
}

std::size_t Residual::workspace_floats(std::int64_t batch, const Shape& input) const {
  if (body_.shapes.empty() || body_.shapes.front() != input) (void)output_shape(input);
  return plan(batch).total;
}

bool Residual::reads_device_step() const {
  auto reads = [](const auto& layer) { return layer->reads_device_step(); };
  return std::any_of(body_.layers.begin(), body_.layers.end(), reads) ||
         std::any_of(shortcut_.layers.begin(), shortcut_.layers.end(), reads);
}

void Residual::initialize(LayerContext& ctx, std::uint64_t seed) {
  CUTRAIN_CHECK(!body_.shapes.empty(), "Residual::initialize before the model's build");
  for (Branch* b : {&body_, &shortcut_}) {
    choose_default_inits(b->layers);
    for (std::size_t j = 0; j < b->layers.size(); ++j) {
      LayerContext inner = ctx.nested(b->scope, j, nullptr, b->shapes[j], b->shapes[j + 1]);
      b->layers[j]->initialize(inner, seed);
    }
  }
}

// Note [16-bit values in fp32 storage]: in bf16 / fp16 each branch layer's output and input
// gradient is rounded as Sequential rounds its layers'; the sum of the branches and the input
// gradient's sum are rounded by the Sequential around the Residual.
Matrix Residual::forward_branch(LayerContext& ctx, int b, const Matrix& x) {
  const Plan& p = plan(x.rows);
  const Branch& br = branch(b);
  float* ws = ctx.workspace();
  const backend::Exec e = exec_of(ctx);
  const bool half = is_half(e.precision);
  Matrix in = x;
  for (std::size_t j = 0; j < br.layers.size(); ++j) {
    LayerContext inner =
        ctx.nested(br.scope, j, ws + p.workspace[b][j], br.shapes[j], br.shapes[j + 1]);
    // Note [BatchNorm2d and ReLU in one pass]: the BatchNorm2d writes the ReLU's output.
    const bool fused = detail::batchnorm_relu_at(br.layers, j);
    const std::size_t last = fused ? j + 1 : j;
    Matrix out{ws + p.output[b][last], x.rows, numel(br.shapes[last + 1]), x.device};
    if (fused)
      static_cast<BatchNorm2d&>(*br.layers[j]).forward_relu(inner, in, out);
    else
      br.layers[j]->forward(inner, in, out);
    if (half && !br.layers[j]->keeps_16bit_values(false))  // fused: the BatchNorm's
      backend::round_half(e, half_format(e.precision), out.data, out.data, out.size());
    in = out;
    j = last;
  }
  return in;
}

void Residual::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  const backend::Exec e = exec_of(ctx);
  const Matrix body = forward_branch(ctx, 0, x);
  const Matrix shortcut = shortcut_.layers.empty() ? x : forward_branch(ctx, 1, x);
  backend::add(e, shortcut.data, body.data, y.data, y.size());
}

void Residual::backward_branch(LayerContext& ctx, int b, const Matrix& x, const Matrix& dy,
                               float* dx) {
  const Plan& p = plan(dy.rows);
  const Branch& br = branch(b);
  float* ws = ctx.workspace();
  const backend::Exec e = exec_of(ctx);
  const bool half = is_half(e.precision);
  Matrix grad = dy;
  for (std::size_t k = br.layers.size(); k-- > 0;) {
    // Note [BatchNorm2d and ReLU in one pass]: the ReLU at k and the BatchNorm2d at j = k - 1.
    const bool fused = k > 0 && detail::batchnorm_relu_at(br.layers, k - 1);
    const std::size_t j = fused ? k - 1 : k;  // the layer whose input gradient is written
    const Matrix in =
        j == 0 ? x : Matrix{ws + p.output[b][j - 1], dy.rows, numel(br.shapes[j]), dy.device};
    const Matrix out{ws + p.output[b][k], dy.rows, numel(br.shapes[k + 1]), dy.device};
    // Ping-pong: the buffer the incoming gradient is not in (the last layer reads dy).
    float* target = grad.data == ws + p.grad_a ? ws + p.grad_b : ws + p.grad_a;
    Matrix dx_k{j == 0 ? dx : target, dy.rows, numel(br.shapes[j]), dy.device};
    LayerContext inner =
        ctx.nested(br.scope, j, ws + p.workspace[b][j], br.shapes[j], br.shapes[j + 1]);
    if (fused)
      static_cast<BatchNorm2d&>(*br.layers[j]).backward_relu(inner, in, out, grad, dx_k);
    else
      br.layers[k]->backward(inner, in, out, grad, dx_k);
    if (half && dx_k.data != nullptr && !br.layers[j]->keeps_16bit_values(true))
      backend::round_half(e, half_format(e.precision), dx_k.data, dx_k.data, dx_k.size());
    grad = dx_k;
    k = j;
  }
}

void Residual::backward(LayerContext& ctx, const Matrix& x, const Matrix& /*y*/, const Matrix& dy,
                        Matrix& dx) {
  const backend::Exec e = exec_of(ctx);
  backward_branch(ctx, 0, x, dy, dx.data);
  if (shortcut_.layers.empty()) {
    // d(x + body(x))/dx: the identity passes dy through.
    if (dx.data != nullptr) backend::add(e, dx.data, dy.data, dx.data, dx.size());
    return;
  }
  float* from_shortcut = dx.data != nullptr ? ctx.workspace() + plan(dy.rows).grad_x : nullptr;
  backward_branch(ctx, 1, x, dy, from_shortcut);
  if (dx.data != nullptr) backend::add(e, dx.data, from_shortcut, dx.data, dx.size());
}

namespace {

void visit(const Layer& layer, const Shape& input, const std::string& at,
           const std::function<void(const Layer&, const Shape&, const std::string&)>& f) {
  f(layer, input, at);
  if (const auto* r = dynamic_cast<const Residual*>(&layer)) {
    for (std::size_t j = 0; j < r->size(); ++j)
      visit(r->layer(j), r->shape(j), at + ".body." + std::to_string(j), f);
    for (std::size_t j = 0; j < r->shortcut_size(); ++j)
      visit(r->shortcut_layer(j), r->shortcut_shape(j), at + ".shortcut." + std::to_string(j), f);
  }
}

}  // namespace

void for_each_layer(Sequential& model,
                    const std::function<void(const Layer&, const Shape&, const std::string&)>& f) {
  for (std::size_t i = 0; i < model.size(); ++i)
    visit(model.layer(i), model.shape(i), std::to_string(i), f);
}

}  // namespace cutrain::nn
