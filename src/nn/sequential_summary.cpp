// What a Sequential says about itself: its modules as torch names them (exports, checkpoints)
// and the summary cutrain-train prints.
#include <sstream>
#include <string>

#include "cutrain/nn/layers.hpp"
#include "cutrain/nn/residual.hpp"
#include "cutrain/nn/sequential.hpp"
#include "src/nn/torch_args.hpp"

namespace cutrain::nn {

std::string Sequential::torch_modules() const {
  return detail::modules_json(layers_);
}

namespace {

std::size_t parameter_count(const Layer& layer) {
  Declarations d;
  layer.declare(d);
  std::size_t n = 0;
  for (const auto& p : d.parameters()) {
    std::size_t k = 1;
    for (const auto dim : p.shape) k *= static_cast<std::size_t>(dim);
    n += k;
  }
  return n;
}

// Flat widths as numbers, images as [C, H, W].
std::string show(const Shape& sh) {
  return sh.size() == 1 ? std::to_string(sh[0]) : shape_str(sh);
}

}  // namespace

std::string Sequential::summary() const {
  std::ostringstream os;
  std::size_t total = 0;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const std::size_t n = parameter_count(*layers_[i]);
    total += n;
    os << "  (" << i << ") " << layers_[i]->kind();
    if (!shapes_.empty()) os << "  " << show(shapes_[i]) << " -> " << show(shapes_[i + 1]);
    os << "  params " << n << "\n";
    // A Residual's body, one line per layer: "(i.j)"; its shortcut's: "(i.shortcut.j)".
    if (const auto* r = dynamic_cast<const Residual*>(layers_[i].get()); r && !shapes_.empty()) {
      for (std::size_t j = 0; j < r->size(); ++j)
        os << "    (" << i << "." << j << ") " << r->layer(j).kind() << "  " << show(r->shape(j))
           << " -> " << show(r->shape(j + 1)) << "  params " << parameter_count(r->layer(j))
           << "\n";
      for (std::size_t j = 0; j < r->shortcut_size(); ++j)
        os << "    (" << i << ".shortcut." << j << ") " << r->shortcut_layer(j).kind() << "  "
           << show(r->shortcut_shape(j)) << " -> " << show(r->shortcut_shape(j + 1))
           << "  params " << parameter_count(r->shortcut_layer(j)) << "\n";
    }
  }
  os << "  total parameters: " << total << "\n";
  return os.str();
}

}  // namespace cutrain::nn
