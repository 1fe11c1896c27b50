#include "cutrain/train/checkpoint.hpp"

#include <set>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn/layers.hpp"

namespace cutrain::train {
namespace {

void add_arena(std::vector<io::TensorData>& out, const Arena& arena, const std::string& prefix) {
  if (arena.total() == 0) return;
  const std::vector<float> all = arena.to_host();
  for (const TensorSpec& t : arena.layout().tensors())
    out.push_back(io::make_tensor(prefix + t.name, t.shape,
                                  std::span<const float>(all).subspan(t.offset, t.numel)));
}

// Copies every tensor of `arena` from the file (names prefixed), checking shapes.
void restore_arena(Arena& arena, const io::SafetensorsFile& f, const std::string& prefix,
                   const std::string& path, bool strip_layers_ok) {
  if (arena.total() == 0) return;
  std::vector<float> all = arena.to_host();
  for (const TensorSpec& t : arena.layout().tensors()) {
    const io::TensorData* d = f.find(prefix + t.name);
    if (d == nullptr && strip_layers_ok && t.name.starts_with("layers."))
      d = f.find(t.name.substr(7));  // torch.nn.Sequential naming
    CUTRAIN_CHECK(d != nullptr, path, ": tensor '", prefix + t.name, "' is missing");
    CUTRAIN_CHECK(d->dtype == io::DType::kF32, path, ": tensor '", d->name, "' is not F32");
    CUTRAIN_CHECK(d->shape == t.shape, path, ": tensor '", d->name, "' has shape ",
                  shape_str(d->shape), " but the model expects ", shape_str(t.shape));
    const std::vector<float> v = d->floats();
    std::copy(v.begin(), v.end(), all.begin() + static_cast<std::ptrdiff_t>(t.offset));
  }
  arena.from_host(all);
}

std::int64_t meta_int(const std::map<std::string, std::string>& m, const std::string& key,
                      const std::string& path) {
  const auto it = m.find(key);
  CUTRAIN_CHECK(it != m.end(), path, ": metadata '", key, "' is missing");
  try {
    std::size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    CUTRAIN_CHECK(used == it->second.size(), path, ": metadata '", key, "' = '", it->second,
                  "' is not an integer");
    return v;
  } catch (const std::logic_error&) {
    CUTRAIN_FAIL(path, ": metadata '", key, "' = '", it->second, "' is not an integer");
  }
}

}  // namespace

void save_checkpoint(const std::string& path, nn::Sequential& model, optim::Optimizer* optimizer,
                     const TrainState& state,
                     const std::map<std::string, std::string>& extra_metadata,
                     const BestWeights& best) {
  std::vector<io::TensorData> tensors;
  add_arena(tensors, model.parameters(), "");
  add_arena(tensors, model.buffers(), "");
  const bool with_best = best.params != nullptr && best.buffers != nullptr;
  if (with_best) {
    add_arena(tensors, *best.params, "best.");
    add_arena(tensors, *best.buffers, "best.");
  }
  std::map<std::string, std::string> meta = extra_metadata;
  meta["format"] = kCheckpointFormat;
  meta["epoch"] = std::to_string(state.epoch);
  meta["step"] = std::to_string(state.step);
  meta["forward_count"] = std::to_string(model.forward_count());
  meta["training_forward_count"] = std::to_string(model.training_forward_count());
  meta["model_seed"] = std::to_string(model.seed());
  meta["bad_epochs"] = std::to_string(state.bad_epochs);
  meta["has_best"] = std::to_string(static_cast<int>(state.has_best));
  meta["world_size"] = std::to_string(state.world_size);
  meta["best_epoch"] = std::to_string(state.best_epoch);
  meta["best_weights"] = std::to_string(static_cast<int>(with_best));
  char best_metric[64];
  std::snprintf(best_metric, sizeof(best_metric), "%.17g", state.best_metric);
  meta["best_metric"] = best_metric;
  meta["model"] = model.summary();
  if (optimizer != nullptr) {
    meta["optimizer"] = optimizer->name();
    meta["optimizer.applied_steps"] = std::to_string(optimizer->applied_steps());
    meta["optimizer.skipped_steps"] = std::to_string(optimizer->skipped_steps());
    meta["optimizer.issued_steps"] = std::to_string(optimizer->issued_steps());
    for (const auto& s : optimizer->state()) add_arena(tensors, *s.arena, "optim." + s.name + ".");
  }
  io::save_safetensors(path, tensors, meta);
}

TrainState load_checkpoint(const std::string& path, nn::Sequential& model,
                           optim::Optimizer* optimizer, std::map<std::string, std::string>* out,
                           const BestWeights& best) {
  const io::SafetensorsFile f = io::load_safetensors(path);
  const auto fmt = f.metadata.find("format");
  CUTRAIN_CHECK(fmt != f.metadata.end() && fmt->second == kCheckpointFormat, path,
                ": not a cutrain checkpoint (metadata format is '",
                fmt == f.metadata.end() ? "" : fmt->second, "', expected ", kCheckpointFormat,
                "); use load_weights for a weights-only file");
  restore_arena(model.parameters(), f, "", path, false);
  restore_arena(model.buffers(), f, "", path, false);
  TrainState st;
  st.epoch = meta_int(f.metadata, "epoch", path);
  st.step = meta_int(f.metadata, "step", path);
  st.bad_epochs = meta_int(f.metadata, "bad_epochs", path);
  st.has_best = meta_int(f.metadata, "has_best", path) != 0;
  if (f.metadata.count("world_size") != 0) st.world_size = meta_int(f.metadata, "world_size", path);
  CUTRAIN_CHECK(st.world_size >= 1, path, ": world_size ", st.world_size, " in the metadata");
  // Checkpoints from before these fields have neither (best_epoch 0, no best weights).
  if (f.metadata.count("best_epoch") != 0) st.best_epoch = meta_int(f.metadata, "best_epoch", path);
  const bool file_has_best =
      f.metadata.count("best_weights") != 0 && meta_int(f.metadata, "best_weights", path) != 0;
  if (file_has_best && best.params != nullptr && best.buffers != nullptr) {
    restore_arena(*best.params, f, "best.", path, false);
    restore_arena(*best.buffers, f, "best.", path, false);
    st.has_best_weights = true;
  }
  try {
    st.best_metric = std::stod(f.metadata.at("best_metric"));
  } catch (const std::exception&) {
    CUTRAIN_FAIL(path, ": metadata 'best_metric' is missing or not a number");
  }
  const std::int64_t forward = meta_int(f.metadata, "forward_count", path);
  CUTRAIN_CHECK(st.epoch >= 0 && st.step >= 0 && forward >= 0, path,
                ": negative training position in the metadata");
  model.set_forward_count(static_cast<std::uint64_t>(forward));
  // Older checkpoints lack it: their forward count is the closest figure.
  const std::int64_t training_forward = f.metadata.count("training_forward_count") != 0
                                            ? meta_int(f.metadata, "training_forward_count", path)
                                            : forward;
  CUTRAIN_CHECK(training_forward >= 0 && training_forward <= forward, path,
                ": training_forward_count ", training_forward, " is not in [0, forward_count ",
                forward, "]");
  model.set_training_forward_count(static_cast<std::uint64_t>(training_forward));
  model.set_seed(static_cast<std::uint64_t>(meta_int(f.metadata, "model_seed", path)));
  if (optimizer != nullptr) {
    const auto it = f.metadata.find("optimizer");
    CUTRAIN_CHECK(it != f.metadata.end() && it->second == optimizer->name(), path,
                  ": the checkpoint's optimizer is '",
                  it == f.metadata.end() ? "(none)" : it->second, "' but the run uses ",
                  optimizer->name());
    for (const auto& s : optimizer->state())
      restore_arena(*s.arena, f, "optim." + s.name + ".", path, false);
    optimizer->set_step_counts(meta_int(f.metadata, "optimizer.applied_steps", path),
                               meta_int(f.metadata, "optimizer.skipped_steps", path));
  }
  if (out != nullptr) *out = f.metadata;
  return st;
}

void load_weights(const std::string& path, nn::Sequential& model) {
  const io::SafetensorsFile f = io::load_safetensors(path);
  restore_arena(model.parameters(), f, "", path, true);
  restore_arena(model.buffers(), f, "", path, true);
}

void export_torch(const std::string& path, nn::Sequential& model) {
  std::vector<io::TensorData> tensors;
  add_arena(tensors, model.parameters(), "");
  add_arena(tensors, model.buffers(), "");
  std::set<std::string> batchnorms;
  for (auto& t : tensors) {
    t.name = t.name.substr(7);  // "layers.0.weight" -> "0.weight"
    if (t.name.ends_with(".running_var")) batchnorms.insert(t.name.substr(0, t.name.find('.')));
  }
  for (const std::string& i : batchnorms) {
    io::TensorData n{i + ".num_batches_tracked", io::DType::kI64, {}, std::vector<std::uint8_t>(8)};
    const std::uint64_t count = model.training_forward_count();  // training batches seen
    for (int b = 0; b < 8; ++b)
      n.bytes[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(count >> (8 * b));
    tensors.push_back(std::move(n));
  }
  io::save_safetensors(path, tensors, {{"format", "pt"}});
}

}  // namespace cutrain::train
