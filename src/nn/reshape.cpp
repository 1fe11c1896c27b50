// Flatten and Unflatten: a row's values stay where they are (NCHW rows are already flat), only
// the shape the next layer sees changes; forward and backward copy.
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/nn/conv.hpp"
#include "src/nn/context.hpp"

namespace cutrain::nn {

Shape Flatten::output_shape(const Shape& input) const {
  return {numel(input)};
}

void Flatten::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  backend::copy(exec_of(ctx), x.data, y.data, x.size());
}

void Flatten::backward(LayerContext& ctx, const Matrix& /*x*/, const Matrix& /*y*/,
                       const Matrix& dy, Matrix& dx) {
  if (dx.data != nullptr) backend::copy(exec_of(ctx), dy.data, dx.data, dy.size());
}

Unflatten::Unflatten(std::int64_t dim, Shape sizes) : dim_(dim), sizes_(std::move(sizes)) {
  CUTRAIN_CHECK(dim >= 1, "Unflatten: dim = ", dim,
                " must be >= 1 (dim 0 is the batch; 1 is a sample's first dimension)");
  CUTRAIN_CHECK(!sizes_.empty(), "Unflatten: unflattened_size is empty");
  for (const std::int64_t d : sizes_)
    CUTRAIN_CHECK(d > 0, "Unflatten: unflattened_size ", shape_str(sizes_),
                  " must have positive sizes");
}

std::string Unflatten::torch_args() const {
  std::string s = "{\"dim\": " + std::to_string(dim_) + ", \"unflattened_size\": [";
  for (std::size_t i = 0; i < sizes_.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes_[i]);
  return s + "]}";
}

Shape Unflatten::output_shape(const Shape& input) const {
  const auto at = static_cast<std::size_t>(dim_ - 1);
  CUTRAIN_CHECK(at < input.size(), "Unflatten(", dim_, ", ", shape_str(sizes_),
                "): its input of shape ", shape_str(input), " has no dimension ", dim_);
  CUTRAIN_CHECK(numel(sizes_) == input[at], "Unflatten(", dim_, ", ", shape_str(sizes_),
                "): the sizes hold ", numel(sizes_), " values but dimension ", dim_,
                " of the input (shape ", shape_str(input), ") has ", input[at]);
  Shape out(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(at));
  out.insert(out.end(), sizes_.begin(), sizes_.end());
  out.insert(out.end(), input.begin() + static_cast<std::ptrdiff_t>(at) + 1, input.end());
  return out;
}

void Unflatten::forward(LayerContext& ctx, const Matrix& x, Matrix& y) {
  backend::copy(exec_of(ctx), x.data, y.data, x.size());
}

void Unflatten::backward(LayerContext& ctx, const Matrix& /*x*/, const Matrix& /*y*/,
                         const Matrix& dy, Matrix& dx) {
  if (dx.data != nullptr) backend::copy(exec_of(ctx), dy.data, dx.data, dy.size());
}

}  // namespace cutrain::nn
