// libFuzzer target: a training checkpoint loaded into a small model and optimizer, the way
// `cutrain-train --resume` does (train::load_checkpoint), and the same bytes as weights
// (train::load_weights, --init-from), as torch.optim state (train::import_torch_optimizer,
// --init-optimizer-from) and as a model described by its own metadata (train::load_model).
// Any input gives a loaded state or cutrain::Error - never a
// crash or a sanitizer report - and a refused file leaves the model and the optimizer exactly
// as they were (load_checkpoint is all or nothing): a violation aborts, which libFuzzer reports.
//
// Seed: CUTRAIN_FUZZ_WRITE_SEED=<path> makes the binary write a valid checkpoint of its model
// there and exit (tests/fuzz/run.sh does this, so the seed always has the current format).
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "cutrain/train/data_spec.hpp"

namespace {

using namespace cutrain;

// Linear, BatchNorm1d (buffers), ReLU, Linear; AMSGrad Adam (three state arenas) with dynamic
// loss scaling (the scaler's state).
struct Setup {
  nn::Sequential model{4};
  std::unique_ptr<optim::Adam> opt;
  Arena best_params, best_buffers, ema;  // early stopping's best, the weight average
  std::string path;

  Setup() {
    model.emplace<nn::Linear>(4, 3).emplace<nn::BatchNorm1d>(3);
    model.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Linear>(3, 2);
    model.build(Device::cpu(), 7);
    opt = std::make_unique<optim::Adam>(model.parameters(),
                                        optim::AdamOptions{.lr = 0.01F, .amsgrad = true});
    Arena g = model.parameters().like();
    for (const auto& t : g.layout().tensors())
      g.tensor_from_host(t.name, std::vector<float>(t.numel, 0.5F));
    opt->step(model.parameters(), g);
    opt->enable_loss_scaling({.init_scale = 1024.0F, .growth_interval = 8});  // its state too
    best_params = model.parameters().like();
    best_buffers = model.buffers().like();
    ema = model.parameters().like();
    path = (std::filesystem::temp_directory_path() /
            ("cutrain_checkpoint_fuzz_" + std::to_string(::getpid()) + ".safetensors"))
               .string();
  }

  // Bit patterns, not floats: a file may legitimately load NaN weights, and NaN != NaN would
  // make an unchanged state look changed.
  struct Snapshot {
    std::vector<std::vector<std::uint32_t>> arenas;
    std::vector<std::int64_t> counters;
    bool operator==(const Snapshot&) const = default;
  };
  static std::vector<std::uint32_t> bits(const Arena& a) {
    const std::vector<float> v = a.to_host();
    std::vector<std::uint32_t> out(v.size());
    std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
    return out;
  }
  Snapshot snapshot() {
    Snapshot s{{bits(model.parameters()), bits(model.buffers()), bits(best_params),
                bits(best_buffers), bits(ema)},
               {static_cast<std::int64_t>(model.forward_count()),
                static_cast<std::int64_t>(model.training_forward_count()),
                static_cast<std::int64_t>(model.seed()), opt->applied_steps(), opt->skipped_steps(),
                std::ilogb(opt->loss_scale_state().scale), opt->loss_scale_state().growth_count}};
    for (const auto& st : opt->state()) s.arenas.push_back(bits(*st.arena));
    return s;
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

void write_bytes(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* seed = std::getenv("CUTRAIN_FUZZ_WRITE_SEED")) {
    Setup& s = setup();
    train::save_checkpoint(seed, s.model, s.opt.get(),
                           {.epoch = 2,
                            .step = 1,
                            .best_metric = 0.5,
                            .has_best = true,
                            .best_epoch = 1,
                            .ema_updates = 1,
                            .batch = 2,  // mid-epoch: the step results travel too
                            .epoch_losses = {0.5F, 0.25F},
                            .epoch_norms = {1.0F, 2.0F},
                            .order = {.rows = 100,
                                      .batch_size = 8,
                                      .accumulate = 1,
                                      .seed = 18446744073709551615ULL,
                                      .shuffle = true}},
                           {{"config", "fuzz seed"}}, {&s.best_params, &s.best_buffers, &s.ema});
    // The same directory gets a torch.optim state file (export_torch_optimizer) as a second seed.
    const std::string dir = std::filesystem::path(seed).parent_path().string();
    train::export_torch_optimizer((dir.empty() ? "" : dir + "/") + "torch_optimizer.safetensors",
                                  s.model, *s.opt);
    // And an export with its modules (Note [architecture in exports]) for load_model, and a data
    // spec (Note [data spec in exports]).
    train::DataSpec spec;
    spec.mean = {0.5F, -1.0F};
    spec.stddev = {2.0F, 0.0F};
    spec.class_names = {"ant", "bee"};
    spec.feature_columns = {"a", "b"};
    spec.id_column = "id";  // Note [id column]
    train::export_torch((dir.empty() ? "" : dir + "/") + "torch_weights.safetensors", s.model,
                        {{train::kDataSpecKey, spec.to_json()}});
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Setup& s = setup();
  write_bytes(s.path, data, size);
  auto before = s.snapshot();
  try {
    train::load_checkpoint(s.path, s.model, s.opt.get(), nullptr,
                           {&s.best_params, &s.best_buffers, &s.ema});
    return 0;  // loaded: the state is the file's (the next input starts from it)
  } catch (const Error&) {
    if (s.snapshot() != before) {
      std::fprintf(stderr, "load_checkpoint refused the file but changed the state\n");
      std::abort();
    }
  }
  try {
    train::load_weights(s.path, s.model);
    // Loaded (a file with the model's weights whose checkpoint parts are damaged): the weights
    // are the file's now, and what import_torch_optimizer must leave alone is this state.
    before = s.snapshot();
  } catch (const Error&) {
    if (s.snapshot() != before) {
      std::fprintf(stderr, "load_weights refused the file but changed the weights\n");
      std::abort();
    }
  }
  try {
    train::import_torch_optimizer(s.path, s.model, *s.opt);
  } catch (const Error&) {
    if (s.snapshot() != before) {
      std::fprintf(stderr, "import_torch_optimizer refused the file but changed the state\n");
      std::abort();
    }
  }
  try {  // a model of its own: only a crash, a leak or a huge allocation would be a failure
    const nn::Sequential built = train::load_model(s.path, Device::cpu());
  } catch (const Error&) {
  }
  try {  // its data spec (Note [data spec in exports]), as --model-from --predict-csv reads it
    const auto meta = train::read_metadata(s.path);
    const auto spec = meta.find(train::kDataSpecKey);
    if (spec != meta.end()) {
      const train::DataSpec read = train::DataSpec::from_json(spec->second, s.path);
      // Note [data spec on resume]: compared with itself and with none, as resume() does.
      if (!read.differs_from(read).empty()) std::abort();
      (void)read.differs_from(train::DataSpec{});
      (void)train::DataSpec{}.differs_from(read);
    }
  } catch (const Error&) {
  }
  return 0;
}
