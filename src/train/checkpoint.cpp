#include "cutrain/train/checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn/layers.hpp"
#include "src/core/numbers.hpp"
#include "src/train/metadata.hpp"

namespace cutrain::train {
namespace {

using detail::meta_int;

void add_arena(std::vector<io::TensorData>& out, const Arena& arena, const std::string& prefix,
               io::DType dtype = io::DType::kF32) {
  if (arena.total() == 0) return;
  const std::vector<float> all = arena.to_host();
  for (const TensorSpec& t : arena.layout().tensors())
    out.push_back(io::make_tensor(prefix + t.name, t.shape,
                                  std::span<const float>(all).subspan(t.offset, t.numel), dtype));
}

// The values `arena` gets from the file (names prefixed; padding keeps the arena's values),
// checking names, dtypes and shapes. Nothing is written: loading stages every arena first.
// weights_file: a file of weights alone (an export, torch's save_model): torch.nn.Sequential's
// names and 16-bit floats (Note [16-bit exports], widened exactly) are accepted; a checkpoint
// holds cutrain's names and the F32 master weights a resume continues from.
std::vector<float> staged_values(const Arena& arena, const io::SafetensorsFile& f,
                                 const std::string& prefix, const std::string& path,
                                 bool weights_file) {
  std::vector<float> all = arena.to_host();
  for (const TensorSpec& t : arena.layout().tensors()) {
    const io::TensorData* d = f.find(prefix + t.name);
    if (d == nullptr && weights_file && t.name.starts_with("layers."))
      d = f.find(t.name.substr(7));  // torch.nn.Sequential naming
    CUTRAIN_CHECK(d != nullptr, path, ": tensor '", prefix + t.name, "' is missing");
    CUTRAIN_CHECK(d->dtype == io::DType::kF32 || (weights_file && io::is_float(d->dtype)), path,
                  ": tensor '", d->name, "' is ", io::dtype_name(d->dtype), ", not F32",
                  weights_file ? "" : " (a checkpoint holds the F32 master weights)");
    CUTRAIN_CHECK(d->shape == t.shape, path, ": tensor '", d->name, "' has shape ",
                  shape_str(d->shape), " but the model expects ", shape_str(t.shape));
    const std::vector<float> v = d->floats();
    // A diverged run's weights (valid checksum and all) must not load as a model to train or
    // predict with.
    const auto bad = std::find_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
    CUTRAIN_CHECK(bad == v.end(), path, ": tensor '", d->name, "' holds a non-finite value (", *bad,
                  " at element ", bad - v.begin(),
                  "): the file was written by a diverged run; it cannot be loaded");
    std::copy(v.begin(), v.end(), all.begin() + static_cast<std::ptrdiff_t>(t.offset));
  }
  return all;
}

// Arenas to overwrite once every check has passed.
struct Staged {
  std::vector<std::pair<Arena*, std::vector<float>>> arenas;
  void add(Arena& arena, const io::SafetensorsFile& f, const std::string& prefix,
           const std::string& path, bool weights_file) {
    if (arena.total() == 0) return;
    arenas.emplace_back(&arena, staged_values(arena, f, prefix, path, weights_file));
  }
  void commit() {
    for (auto& [arena, values] : arenas) arena->from_host(values);
  }
};

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
  const bool with_ema = best.ema != nullptr && state.ema_updates > 0;  // Note [weight averaging]
  if (with_ema) add_arena(tensors, *best.ema, "ema.");
  std::map<std::string, std::string> meta = extra_metadata;
  meta["ema_updates"] = std::to_string(with_ema ? state.ema_updates : 0);
  meta["format"] = kCheckpointFormat;
  meta["epoch"] = std::to_string(state.epoch);
  meta["step"] = std::to_string(state.step);
  meta["forward_count"] = std::to_string(model.forward_count());
  meta["training_forward_count"] = std::to_string(model.training_forward_count());
  meta["model_seed"] = std::to_string(model.seed());
  meta["bad_epochs"] = std::to_string(state.bad_epochs);
  meta["has_best"] = std::to_string(static_cast<int>(state.has_best));
  meta["monitor"] = state.monitor;
  if (!state.loss.empty()) meta["loss"] = state.loss;
  if (!state.augment.empty()) meta["augment"] = state.augment;
  if (!state.evaluation.empty()) meta["evaluation"] = state.evaluation;
  if (!state.batch_statistics.empty()) meta["batch_statistics"] = state.batch_statistics;
  meta["world_size"] = std::to_string(state.world_size);
  meta["best_epoch"] = std::to_string(state.best_epoch);
  meta["batch"] = std::to_string(state.batch);
  meta["epoch_skipped_steps"] = std::to_string(state.epoch_skipped);
  if (state.order.batch_size > 0) {
    meta["order.rows"] = std::to_string(state.order.rows);
    meta["order.batch_size"] = std::to_string(state.order.batch_size);
    meta["order.accumulate"] = std::to_string(state.order.accumulate);
    meta["order.seed"] = std::to_string(state.order.seed);
    meta["order.shuffle"] = std::to_string(static_cast<int>(state.order.shuffle));
    meta["order.drop_last"] = std::to_string(static_cast<int>(state.order.drop_last));
  }
  if (state.batch > 0) {
    // Note [step losses of every rank]: one row of losses per rank; a single process keeps the
    // original 1-D shape.
    const auto batch = static_cast<std::size_t>(state.batch);
    const bool one_row = state.epoch_losses.size() == batch;
    const Shape losses = one_row ? Shape{state.batch} : Shape{state.world_size, state.batch};
    CUTRAIN_CHECK((one_row || state.epoch_losses.size() ==
                                  batch * static_cast<std::size_t>(state.world_size)) &&
                      state.epoch_norms.size() == batch,
                  "save_checkpoint: a mid-epoch state at batch ", state.batch, " on ",
                  state.world_size, " rank(s) needs ", state.batch * state.world_size,
                  " step losses and ", state.batch, " norms");
    tensors.push_back(io::make_tensor("trainer.step_losses", losses, state.epoch_losses));
    tensors.push_back(io::make_tensor("trainer.step_norms", Shape{state.batch}, state.epoch_norms));
  }
  meta["best_weights"] = std::to_string(static_cast<int>(with_best));
  meta["best_metric"] =
      cutrain::detail::format_g(state.best_metric, 17);  // Note [numbers in files]
  meta["model"] = model.summary();
  meta["cutrain.modules"] = model.torch_modules();  // Note [architecture in exports]
  meta["model.precision"] = precision_name(model.precision());
  if (model.rounding() != Rounding::kNearestEven)  // absent: nearest (files before the option)
    meta["model.rounding"] = rounding_name(model.rounding());
  if (optimizer != nullptr) {
    meta["optimizer"] = optimizer->name();
    meta["optimizer.applied_steps"] = std::to_string(optimizer->applied_steps());
    meta["optimizer.skipped_steps"] = std::to_string(optimizer->skipped_steps());
    meta["optimizer.issued_steps"] = std::to_string(optimizer->issued_steps());
    if (optimizer->loss_scaling()) {  // Note [dynamic loss scale]: GradScaler's state_dict
      // S is a power of two: its exponent is the whole value, written as an exact integer.
      const optim::LossScaleState ls = optimizer->loss_scale_state();
      meta["optimizer.loss_scale_log2"] = std::to_string(std::ilogb(ls.scale));
      meta["optimizer.loss_scale_growth_count"] = std::to_string(ls.growth_count);
    }
    for (const auto& s : optimizer->state()) add_arena(tensors, *s.arena, "optim." + s.name + ".");
  }
  io::save_safetensors(path, tensors, meta);
}

namespace {

// A checkpoint continues the model it was written by: tensors of the same shapes under another
// activation, dropout rate or pooling would silently train a different model. The modules it
// records (Note [architecture in exports]) are compared as JSON, module by module.
void check_same_modules(const std::map<std::string, std::string>& meta, nn::Sequential& model,
                        const std::string& path) {
  const auto it = meta.find("cutrain.modules");
  if (it == meta.end()) return;  // written before checkpoints recorded their modules
  nlohmann::json saved, now = nlohmann::json::parse(model.torch_modules());
  try {
    saved = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    CUTRAIN_FAIL(path, ": metadata 'cutrain.modules' is not valid JSON (", e.what(), ")");
  }
  if (saved == now) return;
  std::size_t i = 0;
  while (i < saved.size() && i < now.size() && saved[i] == now[i]) ++i;
  auto describe = [](const nlohmann::json& list, std::size_t k) {
    return k < list.size() ? list[k].dump() : std::string("no module");
  };
  CUTRAIN_FAIL(path, ": written by another model - its module ", i, " is ", describe(saved, i),
               ", this model's is ", describe(now, i),
               "; resume with the architecture it was trained with (or start afresh from its "
               "weights with --init-from)");
}

}  // namespace

TrainState load_checkpoint(
    const std::string& path, nn::Sequential& model, optim::Optimizer* optimizer,
    std::map<std::string, std::string>* out, const BestWeights& best,
    const std::function<void(const std::map<std::string, std::string>&)>& check) {
  // Every check runs before anything is written: a refused file leaves the model, the optimizer
  // and the best-weights arenas exactly as they were (a caller may catch the error and go on).
  const io::SafetensorsFile f = io::load_safetensors(path);
  const auto& meta = f.metadata;
  const auto fmt = meta.find("format");
  CUTRAIN_CHECK(fmt != meta.end() && fmt->second == kCheckpointFormat, path,
                ": not a cutrain checkpoint (metadata format is '",
                fmt == meta.end() ? "" : fmt->second, "', expected ", kCheckpointFormat,
                "); use load_weights for a weights-only file");
  TrainState st;
  st.epoch = meta_int(meta, "epoch", path);
  st.step = meta_int(meta, "step", path);
  st.bad_epochs = meta_int(meta, "bad_epochs", path);
  st.has_best = meta_int(meta, "has_best", path) != 0;
  if (meta.count("monitor") != 0) st.monitor = meta.at("monitor");
  if (meta.count("loss") != 0) st.loss = meta.at("loss");
  if (meta.count("augment") != 0) st.augment = meta.at("augment");
  if (meta.count("evaluation") != 0) st.evaluation = meta.at("evaluation");
  if (meta.count("batch_statistics") != 0) st.batch_statistics = meta.at("batch_statistics");
  CUTRAIN_CHECK(st.batch_statistics.empty() || st.batch_statistics == "rank" ||
                    st.batch_statistics == "global",
                path, ": batch_statistics '", st.batch_statistics.substr(0, 40),
                "' in the metadata; known: rank, global");
  CUTRAIN_CHECK(st.monitor == "val_loss" || st.monitor == "val_accuracy", path, ": monitor '",
                st.monitor.substr(0, 40), "' in the metadata; known: val_loss, val_accuracy");
  if (meta.count("world_size") != 0) st.world_size = meta_int(meta, "world_size", path);
  CUTRAIN_CHECK(st.world_size >= 1, path, ": world_size ", st.world_size, " in the metadata");
  if (meta.count("ema_updates") != 0) st.ema_updates = meta_int(meta, "ema_updates", path);
  CUTRAIN_CHECK(st.ema_updates >= 0 && st.ema_updates <= st.step, path, ": ema_updates ",
                st.ema_updates, " is not in [0, step = ", st.step, "]");
  // Checkpoints from before these fields have neither (best_epoch 0, no best weights).
  if (meta.count("best_epoch") != 0) st.best_epoch = meta_int(meta, "best_epoch", path);
  const bool file_has_best =
      meta.count("best_weights") != 0 && meta_int(meta, "best_weights", path) != 0;
  const auto saved_best = meta.find("best_metric");
  const std::optional<double> best_metric =
      saved_best == meta.end() ? std::nullopt : cutrain::detail::parse_double(saved_best->second);
  CUTRAIN_CHECK(best_metric.has_value(), path,
                ": metadata 'best_metric' is missing or not a number");
  st.best_metric = *best_metric;
  const std::int64_t forward = meta_int(meta, "forward_count", path);
  CUTRAIN_CHECK(
      st.epoch >= 0 && st.step >= 0 && forward >= 0 && st.bad_epochs >= 0 && st.best_epoch >= 0,
      path, ": negative training position in the metadata");
  // Older checkpoints lack it: their forward count is the closest figure.
  const std::int64_t training_forward = meta.count("training_forward_count") != 0
                                            ? meta_int(meta, "training_forward_count", path)
                                            : forward;
  CUTRAIN_CHECK(training_forward >= 0 && training_forward <= forward, path,
                ": training_forward_count ", training_forward, " is not in [0, forward_count ",
                forward, "]");
  const std::int64_t seed = meta_int(meta, "model_seed", path);
  // Checkpoints from before mid-epoch saving are all at epoch boundaries.
  if (meta.count("batch") != 0) st.batch = meta_int(meta, "batch", path);
  if (meta.count("epoch_skipped_steps") != 0)
    st.epoch_skipped = meta_int(meta, "epoch_skipped_steps", path);
  CUTRAIN_CHECK(st.batch >= 0 && st.epoch_skipped >= 0 && st.epoch_skipped <= st.batch, path,
                ": mid-epoch position (batch ", st.batch, ", skipped ", st.epoch_skipped,
                ") is inconsistent");
  if (meta.count("order.batch_size") != 0) {  // absent from checkpoints before it
    st.order.rows = meta_int(meta, "order.rows", path);
    st.order.batch_size = meta_int(meta, "order.batch_size", path);
    st.order.accumulate = meta_int(meta, "order.accumulate", path);
    st.order.seed = detail::meta_uint(meta, "order.seed", path);
    st.order.shuffle = meta_int(meta, "order.shuffle", path) != 0;
    st.order.drop_last = meta_int(meta, "order.drop_last", path) != 0;
    CUTRAIN_CHECK(st.order.rows > 0 && st.order.batch_size > 0 && st.order.accumulate > 0, path,
                  ": data order (rows ", st.order.rows, ", batch_size ", st.order.batch_size,
                  ", accumulate ", st.order.accumulate, ") in the metadata is invalid");
  }
  if (st.batch > 0) {
    // Note [step losses of every rank]; a multi-rank file written before it has one row (rank
    // 0's), which every rank then takes, as the run that wrote it did.
    const io::TensorData* losses = f.find("trainer.step_losses");
    const bool one_row = losses != nullptr && losses->shape == Shape{st.batch};
    CUTRAIN_CHECK(losses != nullptr && losses->dtype == io::DType::kF32 &&
                      (one_row || losses->shape == Shape{st.world_size, st.batch}),
                  path, ": a checkpoint at batch ", st.batch,
                  " needs the F32 tensor 'trainer.step_losses' of shape [", st.world_size, ", ",
                  st.batch, "] (a row per rank) or [", st.batch, "]");
    st.epoch_losses = losses->floats();
    const io::TensorData* norms = f.find("trainer.step_norms");
    CUTRAIN_CHECK(
        norms != nullptr && norms->dtype == io::DType::kF32 && norms->shape == Shape{st.batch},
        path, ": a checkpoint at batch ", st.batch,
        " needs the F32 tensor 'trainer.step_norms' of shape [", st.batch, "]");
    st.epoch_norms = norms->floats();
  }

  // The architecture first: its message says more than the first tensor of another shape.
  check_same_modules(meta, model, path);
  Staged staged;
  staged.add(model.parameters(), f, "", path, false);
  staged.add(model.buffers(), f, "", path, false);
  if (file_has_best && best.params != nullptr && best.buffers != nullptr) {
    staged.add(*best.params, f, "best.", path, false);
    staged.add(*best.buffers, f, "best.", path, false);
    st.has_best_weights = true;
  }
  if (st.ema_updates > 0) {
    if (best.ema != nullptr)
      staged.add(*best.ema, f, "ema.", path, false);
    else
      st.ema_updates = 0;  // this run does not average: the file's average is not taken
  }
  std::int64_t applied = 0, skipped = 0;
  optim::LossScaleState loss_scale;
  if (optimizer != nullptr) {
    const auto it = meta.find("optimizer");
    CUTRAIN_CHECK(it != meta.end() && it->second == optimizer->name(), path,
                  ": the checkpoint's optimizer is '", it == meta.end() ? "(none)" : it->second,
                  "' but the run uses ", optimizer->name(),
                  ": resume with the optimizer it was written with");
    applied = meta_int(meta, "optimizer.applied_steps", path);
    skipped = meta_int(meta, "optimizer.skipped_steps", path);
    CUTRAIN_CHECK(applied >= 0 && skipped >= 0 && applied < INT32_MAX && skipped < INT32_MAX, path,
                  ": optimizer step counts (", applied, ", ", skipped, ") out of range");
    const bool scaled = meta.count("optimizer.loss_scale_log2") != 0;
    CUTRAIN_CHECK(scaled == optimizer->loss_scaling(), path, ": the checkpoint was written ",
                  scaled ? "with" : "without", " dynamic loss scaling and this run ",
                  scaled ? "has none" : "has it",
                  ": resume with the loss scaling it was written with");
    if (scaled) {
      const std::int64_t log2 = meta_int(meta, "optimizer.loss_scale_log2", path);
      CUTRAIN_CHECK(log2 >= -149 && log2 <= 127, path, ": loss scale 2^", log2,
                    " out of range; valid: 2^-149 to 2^127");
      loss_scale.scale = std::ldexp(1.0F, static_cast<int>(log2));
      const std::int64_t count = meta_int(meta, "optimizer.loss_scale_growth_count", path);
      // Checked here, before anything is loaded: set_loss_scale_state below must not refuse.
      const int interval = optimizer->loss_scaling_options().growth_interval;
      CUTRAIN_CHECK(count >= 0 && count < interval, path, ": loss scale growth count ", count,
                    " is not in [0, ", interval, "), the run's growth interval");
      loss_scale.growth_count = static_cast<std::int32_t>(count);
    }
    for (const auto& s : optimizer->state())
      staged.add(*s.arena, f, "optim." + s.name + ".", path, false);
  }

  // The numerics the run continues with: a resume in another precision would not be the run the
  // checkpoint belongs to (a file without the key predates 16-bit training: fp32).
  const auto precision = meta.find("model.precision");
  const std::string written = precision == meta.end() ? "fp32" : precision->second;
  CUTRAIN_CHECK(written == precision_name(model.precision()), path,
                ": the checkpoint was written by a run in ", written, " and this run computes in ",
                precision_name(model.precision()),
                ": resume with the precision it was written with");
  const auto rounding = meta.find("model.rounding");
  const std::string rounded = rounding == meta.end() ? "nearest" : rounding->second;
  CUTRAIN_CHECK(rounded == rounding_name(model.rounding()), path,
                ": the checkpoint was written by a run whose parameters round ", rounded,
                " and this run's round ", rounding_name(model.rounding()),
                ": resume with the rounding it was written with");
  if (check) check(meta);
  staged.commit();
  model.set_forward_count(static_cast<std::uint64_t>(forward));
  model.set_training_forward_count(static_cast<std::uint64_t>(training_forward));
  model.set_seed(static_cast<std::uint64_t>(seed));
  if (optimizer != nullptr) optimizer->set_step_counts(applied, skipped);
  if (optimizer != nullptr && optimizer->loss_scaling())
    optimizer->set_loss_scale_state(loss_scale);
  if (out != nullptr) *out = meta;
  return st;
}

void load_weights(const std::string& path, nn::Sequential& model) {
  const io::SafetensorsFile f = io::load_safetensors(path);
  Staged staged;  // all or nothing, as load_checkpoint
  staged.add(model.parameters(), f, "", path, true);
  staged.add(model.buffers(), f, "", path, true);
  staged.commit();
}

std::map<std::string, std::string> read_metadata(const std::string& path) {
  return io::load_safetensors(path).metadata;
}

void export_torch(const std::string& path, nn::Sequential& model,
                  const std::map<std::string, std::string>& extra_metadata, io::DType dtype) {
  // Note [architecture in exports]: the modules too, so that Python can rebuild the model
  // (tools/cutrain_torch.py build_model) instead of restating it.
  std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                 {"cutrain.modules", model.torch_modules()}};
  for (const auto& [key, value] : extra_metadata)
    CUTRAIN_CHECK(metadata.emplace(key, value).second, "export_torch: metadata key '", key,
                  "' is the export's own");
  std::vector<io::TensorData> tensors;
  add_arena(tensors, model.parameters(), "", dtype);
  add_arena(tensors, model.buffers(), "", dtype);
  std::set<std::string> batchnorms;
  for (auto& t : tensors) {
    t.name = t.name.substr(7);  // "layers.0.weight" -> "0.weight"
    // The BatchNorm module's name: "3" or, inside a Residual, "3.body.1".
    constexpr std::string_view kVar = ".running_var";
    if (t.name.ends_with(kVar)) batchnorms.insert(t.name.substr(0, t.name.size() - kVar.size()));
  }
  for (const std::string& i : batchnorms) {
    io::TensorData n{i + ".num_batches_tracked", io::DType::kI64, {}, std::vector<std::uint8_t>(8)};
    const std::uint64_t count = model.training_forward_count();  // training batches seen
    for (int b = 0; b < 8; ++b)
      n.bytes[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(count >> (8 * b));
    tensors.push_back(std::move(n));
  }
  io::save_safetensors(path, tensors, metadata);
}

}  // namespace cutrain::train
