// Note [architecture in exports]: a model rebuilt from the torch.nn modules a file lists
// (include/cutrain/train/checkpoint.hpp, load_model).
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn/conv.hpp"
#include "cutrain/nn/layers.hpp"
#include "cutrain/nn/residual.hpp"
#include "cutrain/train/checkpoint.hpp"

namespace cutrain::train {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxModules = 1024;  // in all, bodies of Residuals included
constexpr int kMaxDepth = 16;              // Residuals inside Residuals
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 31;
constexpr std::int64_t kMaxSize = std::int64_t{1} << 16;  // kernel sizes, strides, padding

constexpr std::uint64_t kSaturated = std::numeric_limits<std::uint64_t>::max();
std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  return b != 0 && a > kSaturated / b ? kSaturated : a * b;
}
std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > kSaturated - b ? kSaturated : a + b;
}

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
  // A torch 2-D size: an integer for both dimensions or a pair [h, w]; each in [least, 2^16).
  nn::Size2 size2(const char* key, std::optional<nn::Size2> fallback, std::int64_t least = 1) {
    const json* v = take(key);
    if (v == nullptr || (v->is_null() && fallback)) {
      CUTRAIN_CHECK(fallback.has_value(), where_, ": '", key, "' is missing");
      return *fallback;
    }
    auto one = [&](const json& e) {
      CUTRAIN_CHECK(e.is_number_integer(), where_, ": '", key, "' must be an integer or a pair");
      const auto n = e.get<std::int64_t>();
      CUTRAIN_CHECK(n >= least && n < kMaxSize, where_, ": ", key, " = ", n, " is out of range [",
                    least, ", ", kMaxSize, ")");
      return n;
    };
    if (v->is_array()) {
      CUTRAIN_CHECK(v->size() == 2, where_, ": '", key, "' must be an integer or a pair");
      return {one((*v)[0]), one((*v)[1])};
    }
    return nn::Size2(one(*v));
  }
  // A list of positive sizes (Unflatten's unflattened_size).
  Shape sizes(const char* key) {
    const json* v = take(key);
    CUTRAIN_CHECK(v != nullptr && v->is_array() && !v->empty() && v->size() <= 8, where_, ": '",
                  key, "' must be a list of 1 to 8 sizes");
    Shape out;
    for (const json& e : *v) {
      CUTRAIN_CHECK(
          e.is_number_integer() && e.get<std::int64_t>() > 0 && e.get<std::int64_t>() < kMaxWidth,
          where_, ": '", key, "' must hold positive sizes");
      out.push_back(e.get<std::int64_t>());
    }
    return out;
  }
  // A list of modules (a Residual's body): 1 or more.
  const json& modules(const char* key) {
    const json* v = take(key);
    CUTRAIN_CHECK(v != nullptr && v->is_array() && !v->empty(), where_, ": '", key,
                  "' must be a list of modules");
    return *v;
  }
  // A list of modules that may be absent (a Residual's shortcut: the identity then).
  const json* optional_modules(const char* key) {
    const json* v = take(key);
    CUTRAIN_CHECK(v == nullptr || (v->is_array() && !v->empty()), where_, ": '", key,
                  "' must be a list of modules");
    return v;
  }
  std::int64_t integer(const char* key, std::int64_t fallback) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    CUTRAIN_CHECK(v->is_number_integer(), where_, ": '", key, "' must be an integer");
    return v->get<std::int64_t>();
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
  std::int64_t input = 0;    // the input width it needs (Linear, BatchNorm1d, Unflatten), else 0
  std::int64_t output = 0;   // the width it gives (Linear), -1 unknown here (image layers:
                             // Sequential::build checks their shapes), else its input's
  std::uint64_t floats = 0;  // parameters and buffers it loads from the file
};

// The activation torch.nn names `type` (the class names Activation::kind() gives), if any.
std::optional<nn::Activation::Kind> activation_kind(const std::string& type) {
  using K = nn::Activation::Kind;
  for (const K k : {K::kRelu, K::kLeakyRelu, K::kTanh, K::kSigmoid, K::kGelu, K::kSilu, K::kRelu6,
                    K::kHardswish, K::kElu})
    if (nn::Activation(k).kind() == type) return k;
  return std::nullopt;
}

// `count`: modules made so far, nested ones included (kMaxModules); `depth`: Residuals around.
Module make_module(const json& m, const std::string& where, std::size_t& count, int depth) {
  CUTRAIN_CHECK(++count <= kMaxModules, where, ": more than ", kMaxModules, " modules");
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
  } else if (const std::optional<nn::Activation::Kind> activation = activation_kind(type)) {
    using K = nn::Activation::Kind;
    const K kind = *activation;
    std::optional<float> parameter;
    if (kind == K::kLeakyRelu) parameter = a.number("negative_slope", 0.01F);
    if (kind == K::kElu) parameter = a.number("alpha", 1.0F);
    if (kind == K::kGelu) a.expect("approximate", "none");  // cutrain's GELU is the erf form
    if (kind != K::kTanh && kind != K::kSigmoid && kind != K::kGelu) a.expect("inplace", false);
    out.layer = std::make_unique<nn::Activation>(kind, parameter);
  } else if (type == "Dropout") {
    const float p = a.number("p", 0.5F);
    a.expect("inplace", false);
    out.layer = std::make_unique<nn::Dropout>(p);
  } else if (type == "Conv2d") {
    const std::int64_t in = a.width("in_channels"), n = a.width("out_channels");
    const nn::Size2 k = a.size2("kernel_size", std::nullopt), st = a.size2("stride", 1),
                    pad = a.size2("padding", 0, 0), dil = a.size2("dilation", 1);
    const bool bias = a.flag("bias", true);
    const std::int64_t groups = a.integer("groups", 1);
    CUTRAIN_CHECK(groups > 0 && in % groups == 0 && n % groups == 0, where,
                  " (Conv2d): groups = ", groups, " must be positive and divide in_channels (", in,
                  ") and out_channels (", n, ")");
    a.expect("padding_mode", "zeros");
    out.layer = std::make_unique<nn::Conv2d>(in, n, k, st, pad, dil, bias, groups);
    out.output = -1;
    // in/G x out < 2^62 but x kh kw (< 2^32) may pass 2^64: saturated, so that the count
    // against the file's values refuses it rather than wrapping to a small number.
    out.floats = saturating_add(
        saturating_mul(static_cast<std::uint64_t>(in / groups) * static_cast<std::uint64_t>(n),
                       static_cast<std::uint64_t>(k.h * k.w)),
        bias ? static_cast<std::uint64_t>(n) : 0);
  } else if (type == "MaxPool2d" || type == "AvgPool2d") {
    const nn::Size2 k = a.size2("kernel_size", std::nullopt);
    const nn::Size2 st = a.size2("stride", k), pad = a.size2("padding", 0, 0);
    a.expect("ceil_mode", false);
    if (type == "MaxPool2d") {
      const nn::Size2 dilation = a.size2("dilation", 1);
      CUTRAIN_CHECK(dilation == nn::Size2(1), where, " (MaxPool2d): dilation (", dilation.h, ", ",
                    dilation.w, ") is not supported (only 1)");
      a.expect("return_indices", false);
      out.layer = std::make_unique<nn::MaxPool2d>(k, st, pad);
    } else {
      a.expect("count_include_pad", true);
      a.expect("divisor_override", nullptr);
      out.layer = std::make_unique<nn::AvgPool2d>(k, st, pad);
    }
    out.output = -1;
  } else if (type == "AdaptiveAvgPool2d") {
    out.layer = std::make_unique<nn::AdaptiveAvgPool2d>(a.size2("output_size", std::nullopt));
    out.output = -1;
  } else if (type == "BatchNorm2d") {
    const std::int64_t n = a.width("num_features");
    const float eps = a.number("eps", 1e-5F), momentum = a.number("momentum", 0.1F);
    const bool affine = a.flag("affine", true);
    a.expect("track_running_stats", true);
    out.layer = std::make_unique<nn::BatchNorm2d>(n, eps, momentum, affine);
    out.output = -1;
    out.floats = static_cast<std::uint64_t>(n) * (affine ? 4 : 2);
  } else if (type == "Flatten") {
    a.expect("start_dim", 1);
    a.expect("end_dim", -1);
    out.layer = std::make_unique<nn::Flatten>();
    out.output = -1;
  } else if (type == "Unflatten") {
    const std::int64_t dim = a.integer("dim", 1);
    const Shape sizes = a.sizes("unflattened_size");
    std::int64_t total = 1;
    for (const std::int64_t d : sizes) {
      CUTRAIN_CHECK(total <= kMaxWidth / d, where, ": unflattened_size is too large");
      total *= d;
    }
    out.layer = std::make_unique<nn::Unflatten>(dim, sizes);
    if (dim == 1) out.input = total;
    out.output = -1;
  } else if (type == "Residual") {  // cutrain_torch.Residual: x + body(x), or shortcut(x) + body(x)
    CUTRAIN_CHECK(depth < kMaxDepth, where, ": Residuals nested more than ", kMaxDepth, " deep");
    const json& body = a.modules("body");
    auto block = std::make_unique<nn::Residual>();
    for (std::size_t j = 0; j < body.size(); ++j) {
      Module inner = make_module(body[j], where + " body " + std::to_string(j), count, depth + 1);
      if (j == 0) out.input = inner.input;  // the body keeps the shape: its input is the output
      out.floats = saturating_add(out.floats, inner.floats);
      block->add(std::move(inner.layer));
    }
    // A projection shortcut (cutrain_torch.Residual(..., shortcut=[...])): the block may change
    // the shape, which Sequential::build checks.
    if (const json* shortcut = a.optional_modules("shortcut")) {
      for (std::size_t j = 0; j < shortcut->size(); ++j) {
        Module inner =
            make_module((*shortcut)[j], where + " shortcut " + std::to_string(j), count, depth + 1);
        out.floats = saturating_add(out.floats, inner.floats);
        block->add_shortcut(std::move(inner.layer));
      }
      out.output = -1;
    }
    out.layer = std::move(block);
  } else {
    CUTRAIN_FAIL(where, ": torch.nn.", type,
                 " is not a cutrain layer (cutrain has Linear, BatchNorm1d, ReLU, LeakyReLU, "
                 "Tanh, Sigmoid, GELU, SiLU, Dropout, Conv2d, MaxPool2d, AvgPool2d, "
                 "AdaptiveAvgPool2d, BatchNorm2d, Flatten, Unflatten, and cutrain_torch's "
                 "Residual)");
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
  for (const io::TensorData& t : f.tensors) in_file += t.bytes.size() / io::element_bytes(t.dtype);
  std::vector<Module> parts;
  std::size_t count = 0;
  std::int64_t input = 0, width = 0;
  std::uint64_t floats = 0;
  for (std::size_t i = 0; i < modules.size(); ++i) {
    try {
      parts.push_back(make_module(modules[i], path + ": module " + std::to_string(i), count, 0));
    } catch (const json::exception& e) {  // a value of the wrong range for its type
      CUTRAIN_FAIL(path, ": module ", i, ": ", e.what());
    }
    const Module& m = parts.back();
    if (input == 0 && width == 0) input = width = m.input;  // before any image layer
    CUTRAIN_CHECK(m.input == 0 || width <= 0 || m.input == width, path, ": module ", i, " (",
                  m.layer->kind(), ") expects ", m.input,
                  " input features but the previous layer gives ", width);
    if (m.output != 0) width = m.output;
    floats = saturating_add(floats, m.floats);
    CUTRAIN_CHECK(floats <= in_file, path, ": the modules hold ", floats,
                  " parameters and statistics (up to module ", i, ") but the file only ", in_file,
                  " values");
  }
  CUTRAIN_CHECK(input > 0, path,
                ": the first module (Linear, BatchNorm1d or Unflatten) must say how wide the "
                "input is");
  nn::Sequential model(input);
  for (Module& m : parts) model.add(std::move(m.layer));
  model.build(device, seed);
  load_weights(path, model);
  return model;
}

}  // namespace cutrain::train
