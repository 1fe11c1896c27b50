// Note [architecture in exports]: a model rebuilt from the torch.nn modules a file lists
// (include/cutrain/train/checkpoint.hpp, load_model).
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn/layers.hpp"
#include "cutrain/train/checkpoint.hpp"

namespace cutrain::train {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxModules = 1024;
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 31;

// One module's keyword arguments, each read at most once; keys left over are refused (a
// silently ignored bias=False or track_running_stats=False would load another model).
class Args {
 public:
  Args(const json& args, std::string where) : args_(args), where_(std::move(where)) {
    CUTRAIN_CHECK(args_.is_object(), where_, ": 'args' must be a JSON object");
  }
  std::int64_t width(const char* key) {
    const json* v = take(key);
    CUTRAIN_CHECK(v != nullptr && v->is_number_integer(), where_, ": '", key,
                  "' must be an integer");
    const auto n = v->get<std::int64_t>();
    CUTRAIN_CHECK(n > 0 && n < kMaxWidth, where_, ": ", key, " = ", n, " is not a feature count");
    return n;
  }
  float number(const char* key, float fallback) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    const double d = v->is_number() ? v->get<double>() : std::nan("");
    CUTRAIN_CHECK(std::isfinite(d) && std::abs(d) <= std::numeric_limits<float>::max(), where_,
                  ": '", key, "' must be a finite number");
    return static_cast<float>(d);
  }
  bool flag(const char* key, bool fallback) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    CUTRAIN_CHECK(v->is_boolean(), where_, ": '", key, "' must be true or false");
    return v->get<bool>();
  }
  // torch's value for a setting cutrain has no other form of (inplace, approximate, ...).
  template <class T>
  void expect(const char* key, const T& only) {
    const json* v = take(key);
    CUTRAIN_CHECK(v == nullptr || *v == json(only), where_, ": ", key, " = ", v ? v->dump() : "",
                  " is not supported (only ", json(only).dump(), ")");
  }
  void done() const {
    for (const auto& [key, value] : args_.items())
      CUTRAIN_CHECK(used_.count(key) != 0, where_, ": unknown argument '", key, "'");
  }

 private:
  const json* take(const char* key) {
    used_.insert(key);
    const auto it = args_.find(key);
    return it == args_.end() ? nullptr : &*it;
  }
  const json& args_;
  std::string where_;
  std::set<std::string> used_;
};

struct Module {
  std::unique_ptr<nn::Layer> layer;
  std::int64_t input = 0;    // the input width it needs (Linear, BatchNorm1d), else 0
  std::int64_t output = 0;   // the width it gives (Linear), else its input's
  std::uint64_t floats = 0;  // parameters and buffers it loads from the file
};

Module make_module(const json& m, const std::string& where) {
  CUTRAIN_CHECK(m.is_object() && m.contains("type") && m["type"].is_string(), where,
                ": expected {\"type\": \"<torch.nn class>\", \"args\": {...}}");
  const auto type = m["type"].get<std::string>();
  const json none = json::object();
  Args a(m.contains("args") ? m["args"] : none, where + " (" + type + ")");
  Module out;
  if (type == "Linear") {
    const std::int64_t in = a.width("in_features"), n = a.width("out_features");
    const bool bias = a.flag("bias", true);
    out.layer = std::make_unique<nn::Linear>(in, n, bias);
    out.input = in;
    out.output = n;
    out.floats = static_cast<std::uint64_t>(in) * static_cast<std::uint64_t>(n) +
                 (bias ? static_cast<std::uint64_t>(n) : 0);
  } else if (type == "BatchNorm1d") {
    const std::int64_t n = a.width("num_features");
    const float eps = a.number("eps", 1e-5F), momentum = a.number("momentum", 0.1F);
    const bool affine = a.flag("affine", true);
    a.expect("track_running_stats", true);
    out.layer = std::make_unique<nn::BatchNorm1d>(n, eps, momentum, affine);
    out.input = n;
    out.floats = static_cast<std::uint64_t>(n) * (affine ? 4 : 2);
  } else if (type == "ReLU" || type == "Tanh" || type == "Sigmoid" || type == "GELU" ||
             type == "SiLU" || type == "LeakyReLU") {
    using K = nn::Activation::Kind;
    const K kind = type == "ReLU"      ? K::kRelu
                   : type == "Tanh"    ? K::kTanh
                   : type == "Sigmoid" ? K::kSigmoid
                   : type == "GELU"    ? K::kGelu
                   : type == "SiLU"    ? K::kSilu
                                       : K::kLeakyRelu;
    const float slope = kind == K::kLeakyRelu ? a.number("negative_slope", 0.01F) : 0.01F;
    if (kind == K::kGelu) a.expect("approximate", "none");  // cutrain's GELU is the erf form
    if (kind == K::kRelu || kind == K::kLeakyRelu || kind == K::kSilu) a.expect("inplace", false);
    out.layer = std::make_unique<nn::Activation>(kind, slope);
  } else if (type == "Dropout") {
    const float p = a.number("p", 0.5F);
    a.expect("inplace", false);
    out.layer = std::make_unique<nn::Dropout>(p);
  } else {
    CUTRAIN_FAIL(where, ": torch.nn.", type,
                 " is not a cutrain layer (cutrain has Linear, BatchNorm1d, ReLU, LeakyReLU, "
                 "Tanh, Sigmoid, GELU, SiLU, Dropout)");
  }
  a.done();
  return out;
}

}  // namespace

nn::Sequential load_model(const std::string& path, Device device, std::uint64_t seed) {
  const io::SafetensorsFile f = io::load_safetensors(path);
  const auto it = f.metadata.find("cutrain.modules");
  CUTRAIN_CHECK(it != f.metadata.end(), path,
                ": no 'cutrain.modules' metadata: the file does not say which model it holds "
                "(export it with export_torch, cutrain-train --export-torch or "
                "tools/cutrain_torch.py save_model; or build the model and use load_weights)");
  json modules;
  try {
    modules = json::parse(it->second);
  } catch (const json::exception& e) {
    CUTRAIN_FAIL(path, ": metadata 'cutrain.modules' is not valid JSON (", e.what(), ")");
  }
  CUTRAIN_CHECK(modules.is_array() && !modules.empty() && modules.size() <= kMaxModules, path,
                ": metadata 'cutrain.modules' must list 1 to ", kMaxModules, " modules");
  // Nothing is allocated for weights the file cannot hold (a damaged or hostile header): the
  // modules' parameters and statistics are counted against the values present.
  std::uint64_t in_file = 0;
  for (const io::TensorData& t : f.tensors) in_file += t.bytes.size() / sizeof(float);
  std::vector<Module> parts;
  std::int64_t input = 0, width = 0;
  std::uint64_t floats = 0;
  for (std::size_t i = 0; i < modules.size(); ++i) {
    try {
      parts.push_back(make_module(modules[i], path + ": module " + std::to_string(i)));
    } catch (const json::exception& e) {  // a value of the wrong range for its type
      CUTRAIN_FAIL(path, ": module ", i, ": ", e.what());
    }
    const Module& m = parts.back();
    if (input == 0) input = width = m.input;
    CUTRAIN_CHECK(m.input == 0 || width == 0 || m.input == width, path, ": module ", i, " (",
                  m.layer->kind(), ") expects ", m.input,
                  " input features but the previous layer gives ", width);
    if (m.output > 0) width = m.output;
    floats += m.floats;  // < 2^62 each, added to a sum <= in_file: no overflow
    CUTRAIN_CHECK(floats <= in_file, path, ": the modules hold ", floats,
                  " parameters and statistics (up to module ", i, ") but the file only ", in_file,
                  " values");
  }
  CUTRAIN_CHECK(input > 0, path, ": no Linear or BatchNorm1d says how wide the input is");
  nn::Sequential model(input);
  for (Module& m : parts) model.add(std::move(m.layer));
  model.build(device, seed);
  load_weights(path, model);
  return model;
}

}  // namespace cutrain::train
