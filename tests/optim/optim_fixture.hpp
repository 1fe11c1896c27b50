#pragma once
// Builds optimizers from a JSON description (tests/optim/golden/cases.json) and the golden
// model arena (w [48, 40] and b [70]; b in group 1 when `groups`).

#include <nlohmann/json.hpp>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/optim.hpp"
#include "golden_inputs.hpp"

namespace cutrain::testing {

inline std::shared_ptr<const ArenaLayout> golden_layout(bool groups) {
  ArenaLayout::Builder b;
  b.add("w", {kGoldenRows, kGoldenCols}, 0);
  b.add("b", {kGoldenBias}, groups ? 1 : 0);
  return b.build();
}

// Writes the first kGoldenN values of `flat` into w then b (the PyTorch flattening order).
inline void set_flat(Arena& a, std::span<const float> flat) {
  const std::size_t nw = kGoldenRows * kGoldenCols;
  a.tensor_from_host("w", flat.subspan(0, nw));
  a.tensor_from_host("b", flat.subspan(nw, kGoldenBias));
}

inline std::vector<float> get_flat(const Arena& a) {
  std::vector<float> out = a.tensor_to_host("w");
  const std::vector<float> b = a.tensor_to_host("b");
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

inline std::unique_ptr<optim::Optimizer> make_optimizer(const nlohmann::json& c,
                                                        const Arena& params) {
  const std::string kind = c.at("optimizer");
  const nlohmann::json& o = c.at("options");
  auto f = [&](const char* key, float dflt) { return o.value(key, dflt); };
  auto b = [&](const char* key) { return o.value(key, false); };
  std::unique_ptr<optim::Optimizer> opt;
  if (kind == "sgd") {
    opt = std::make_unique<optim::Sgd>(
        params, optim::SgdOptions{f("lr", 0.01F), f("momentum", 0), f("dampening", 0),
                                  f("weight_decay", 0), b("nesterov"), b("maximize")});
  } else if (kind == "adagrad") {
    opt = std::make_unique<optim::Adagrad>(
        params,
        optim::AdagradOptions{f("lr", 0.01F), f("lr_decay", 0), f("weight_decay", 0),
                              f("initial_accumulator_value", 0), f("eps", 1e-10F), b("maximize")});
  } else if (kind == "rmsprop") {
    opt = std::make_unique<optim::Rmsprop>(
        params, optim::RmspropOptions{f("lr", 0.01F), f("alpha", 0.99F), f("eps", 1e-8F),
                                      f("weight_decay", 0), f("momentum", 0), b("centered"),
                                      b("nesterov"), b("maximize")});
  } else if (kind == "adam" || kind == "adamw") {
    const optim::AdamOptions ao{f("lr", 1e-3F),
                                f("beta1", 0.9F),
                                f("beta2", 0.999F),
                                f("eps", 1e-8F),
                                f("weight_decay", kind == "adamw" ? 1e-2F : 0.0F),
                                b("amsgrad"),
                                b("maximize")};
    if (kind == "adam") {
      opt = std::make_unique<optim::Adam>(params, ao);
    } else {
      opt = std::make_unique<optim::AdamW>(params, ao);
    }
  }
  if (opt && c.value("groups", false)) opt->set_group(1, {0.5F, 0.0F});
  return opt;
}

// The golden model's initial parameters on `device`.
inline Arena golden_arena(Device device = Device::cpu(), bool groups = false) {
  Arena p(golden_layout(groups), Device::cpu());
  set_flat(p, golden_initial_params());
  return p.copy_to(device);
}

// The golden gradient of step t into `grads`.
inline void set_golden_grads(Arena& grads, int t) {
  std::vector<float> g(kGoldenN);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = golden_grad(t, i);
  set_flat(grads, g);
}

}  // namespace cutrain::testing
