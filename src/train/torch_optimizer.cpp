// Optimizer state in PyTorch's terms (Note [torch optimizer state] in
// include/cutrain/train/checkpoint.hpp): export for torch.optim, import from it.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "src/train/metadata.hpp"

namespace cutrain::train {
namespace {

constexpr const char* kTorchOptimizerFormat = "cutrain-torch-optimizer-1";

// "layers.0.weight" -> "0.weight": torch.nn.Sequential's parameter names.
std::string torch_name(const std::string& name) {
  return name.starts_with("layers.") ? name.substr(7) : name;
}

}  // namespace

void export_torch_optimizer(const std::string& path, nn::Sequential& model,
                            optim::Optimizer& optimizer) {
  const Arena& params = model.parameters();
  CUTRAIN_CHECK(params.layout() == optimizer.layout(), "export_torch_optimizer: the optimizer ",
                optimizer.name(), " was not built for this model's parameters");
  const std::int64_t step = optimizer.applied_steps();
  std::vector<io::TensorData> tensors;
  if (step > 0) {  // before the first step torch.optim has no state
    for (const optim::NamedState& s : optimizer.state()) {
      const std::vector<float> all = s.arena->to_host();
      for (const TensorSpec& t : params.layout().tensors())
        tensors.push_back(io::make_tensor(torch_name(t.name) + "." + s.name, t.shape,
                                          std::span<const float>(all).subspan(t.offset, t.numel)));
    }
  }
  io::save_safetensors(path, tensors,
                       {{"format", kTorchOptimizerFormat},
                        {"optimizer", optimizer.name()},
                        {"step", std::to_string(step)}});
}

void import_torch_optimizer(const std::string& path, nn::Sequential& model,
                            optim::Optimizer& optimizer) {
  const io::SafetensorsFile f = io::load_safetensors(path);
  const auto meta = [&](const char* key) -> std::string {
    const auto it = f.metadata.find(key);
    CUTRAIN_CHECK(it != f.metadata.end(), path, ": metadata '", key,
                  "' is missing (write the file with tools/cutrain_torch.py)");
    return it->second;
  };
  CUTRAIN_CHECK(meta("format") == kTorchOptimizerFormat, path, ": format '", meta("format"),
                "' is not ", kTorchOptimizerFormat);
  CUTRAIN_CHECK(meta("optimizer") == optimizer.name(), path, ": state of torch.optim.",
                meta("optimizer"), " cannot initialize cutrain's ", optimizer.name());
  const Arena& params = model.parameters();
  CUTRAIN_CHECK(params.layout() == optimizer.layout(), "import_torch_optimizer: the optimizer ",
                optimizer.name(), " was not built for this model's parameters");
  const std::int64_t step = detail::meta_int(f.metadata, "step", path);
  CUTRAIN_CHECK(step >= 0 && step < INT32_MAX, path, ": step ", step, " is not a step count");
  // Every tensor of the file must land somewhere: a state this optimizer does not keep (for
  // example max_exp_avg_sq without amsgrad) means the configurations differ.
  std::vector<std::pair<Arena*, std::vector<float>>> staged;
  std::size_t used_tensors = 0;
  for (const optim::NamedState& s : optimizer.state()) {
    std::vector<float> all(s.arena->total(), 0.0F);  // padding stays zero
    for (const TensorSpec& t : params.layout().tensors()) {
      const std::string name = torch_name(t.name) + "." + s.name;
      const io::TensorData* d = f.find(name);
      if (step == 0 && d == nullptr) continue;  // no state yet: zeros, as a fresh optimizer
      CUTRAIN_CHECK(d != nullptr, path, ": tensor '", name, "' is missing");
      CUTRAIN_CHECK(d->dtype == io::DType::kF32 && d->shape == t.shape, path, ": tensor '", name,
                    "' must be F32 of shape ", shape_str(t.shape));
      const std::vector<float> v = d->floats();
      std::copy(v.begin(), v.end(), all.begin() + static_cast<std::ptrdiff_t>(t.offset));
      ++used_tensors;
    }
    staged.emplace_back(s.arena, std::move(all));
  }
  CUTRAIN_CHECK(used_tensors == f.tensors.size(), path, ": ", f.tensors.size() - used_tensors,
                " tensor(s) match no state of cutrain's ", optimizer.name(),
                " (a different configuration, e.g. amsgrad, momentum or centered?)");
  for (auto& [arena, values] : staged) arena->from_host(values);
  optimizer.set_step_counts(step, 0);
}

}  // namespace cutrain::train
