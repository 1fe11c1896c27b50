// ONNX export (include/cutrain/train/onnx.hpp): the model's layers as ONNX operators, written
// with the protobuf wire-format writer of src/io/protobuf.hpp. Field numbers: onnx/onnx.proto.
#include "cutrain/train/onnx.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"
#include "cutrain/nn/residual.hpp"
#include "cutrain/version.hpp"
#include "kernels/nn/pool.cuh"
#include "src/io/protobuf.hpp"

namespace cutrain::train {
namespace {

using io::pb::Writer;

constexpr std::int64_t kIrVersion = 8;  // ONNX 1.10+: what opset 17 needs
constexpr std::int64_t kOpset = 17;
constexpr std::int64_t kFloat = 1;  // TensorProto.DataType
constexpr std::int64_t kInt64 = 7;

// AttributeProto (name 1, type 20; f 2, i 3, floats 7, ints 8). AttributeType: FLOAT 1, INT 2,
// FLOATS 6, INTS 7.
Writer attr_int(std::string_view name, std::int64_t v) {
  Writer a;
  a.bytes(1, name).varint(20, 2).varint(3, v);
  return a;
}
Writer attr_float(std::string_view name, float v) {
  Writer a;
  a.bytes(1, name).varint(20, 1).f32(2, v);
  return a;
}
Writer attr_ints(std::string_view name, std::vector<std::int64_t> v) {
  Writer a;
  a.bytes(1, name).varint(20, 7).packed(8, v);
  return a;
}

// ValueInfoProto (name 1, type 2) of a float tensor [batch, features], batch symbolic:
// TypeProto.tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_param 2 / dim_value 1.
Writer value_info(std::string_view name, std::int64_t features) {
  Writer batch, width, shape, tensor, type, info;
  batch.bytes(2, "batch");
  width.varint(1, features);
  shape.message(1, batch).message(1, width);
  tensor.varint(1, kFloat).message(2, shape);
  type.message(1, tensor);
  info.bytes(1, name).message(2, type);
  return info;
}

class GraphBuilder {
 public:
  // A float initializer (TensorProto: dims 1, data_type 2, name 8, raw_data 9); returns its name.
  std::string constant(const std::string& name, std::vector<std::int64_t> dims,
                       std::span<const float> values) {
    Writer t;
    t.packed(1, dims).varint(2, kFloat).bytes(8, name);
    t.bytes(9, std::string_view(reinterpret_cast<const char*>(values.data()),
                                values.size() * sizeof(float)));
    graph_.message(5, t);
    return name;
  }
  std::string constant_i64(const std::string& name, std::span<const std::int64_t> values) {
    Writer t;
    const std::vector<std::int64_t> dims{static_cast<std::int64_t>(values.size())};
    t.packed(1, dims).varint(2, kInt64).bytes(8, name);
    t.bytes(9, std::string_view(reinterpret_cast<const char*>(values.data()),
                                values.size() * sizeof(std::int64_t)));
    graph_.message(5, t);
    return name;
  }
  std::string scalar(const std::string& name, float v) { return constant(name, {}, {&v, 1}); }

  // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5. Returns the output's name.
  std::string node(std::string_view op, const std::vector<std::string>& inputs,
                   const std::string& output, const std::vector<Writer>& attributes = {}) {
    Writer n;
    for (const std::string& in : inputs) n.bytes(1, in);
    n.bytes(2, output).bytes(3, output).bytes(4, op);
    for (const Writer& a : attributes) n.message(5, a);
    graph_.message(1, n);
    return output;
  }
  Writer& graph() { return graph_; }

 private:
  Writer graph_;
};

std::vector<std::int64_t> pair_of(const nlohmann::json& j, const char* key) {
  return {j.at(key).at(0).get<std::int64_t>(), j.at(key).at(1).get<std::int64_t>()};
}

// The data preparation of DataSpec::apply, in its order: fill missing values, scale, standardize.
std::string prepare(GraphBuilder& g, const DataSpec& spec, std::string cur, std::int64_t features) {
  const auto f = static_cast<std::size_t>(features);
  if (!spec.impute.empty()) {
    CUTRAIN_CHECK(spec.impute.size() == f, "export_onnx: the data spec fills ", spec.impute.size(),
                  " features but the model takes ", features);
    const std::string missing = g.node("IsNaN", {cur}, "prep.missing");
    cur = g.node("Where", {missing, g.constant("prep.fill", {features}, spec.impute), cur},
                 "prep.filled");
  }
  if (spec.scale != 1.0F)
    cur = g.node("Mul", {cur, g.scalar("prep.scale", spec.scale)}, "prep.scaled");
  if (!spec.mean.empty()) {
    CUTRAIN_CHECK(spec.mean.size() == f, "export_onnx: the data spec standardizes ",
                  spec.mean.size(), " features but the model takes ", features);
    std::vector<float> divisor(spec.stddev);
    for (float& s : divisor) s = s > 0 ? s : 1.0F;  // Standardizer: a constant column is centred
    cur = g.node("Sub", {cur, g.constant("prep.mean", {features}, spec.mean)}, "prep.centred");
    cur = g.node("Div", {cur, g.constant("prep.std", {features}, divisor)}, "prep.standardized");
  }
  return cur;
}

// Note [test-time flips]: the batch [N, F] followed by its mirror images, [2N, F] - each run of W
// values reversed (rules::mirror_source): viewed as [N F / W, W] lines, sliced backwards along
// W (start -1, end below the first element: torch.flip's export), viewed as rows again.
std::string with_mirror_images(GraphBuilder& g, const std::string& cur, const data::EvalAugment& a,
                               std::int64_t features) {
  const std::array<std::int64_t, 2> lines{-1, a.image[2]}, rows{-1, features};
  const std::array<std::int64_t, 1> start{-1}, end{std::numeric_limits<std::int64_t>::min() + 1},
      axis{1}, step{-1};
  const std::string mirrored =
      g.node("Slice",
             {g.node("Reshape", {cur, g.constant_i64("flip.lines_shape", lines)}, "flip.lines"),
              g.constant_i64("flip.start", start), g.constant_i64("flip.end", end),
              g.constant_i64("flip.axis", axis), g.constant_i64("flip.step", step)},
             "flip.mirrored_lines");
  const std::string back =
      g.node("Reshape", {mirrored, g.constant_i64("flip.rows_shape", rows)}, "flip.mirrored");
  return g.node("Concat", {cur, back}, "flip.both", {attr_int("axis", 0)});
}

// The ONNX nodes of one layer whose tensors are "<p>weight", ...: `cur` is its input's name;
// returns its output's. `where`: its position for messages ("3", "3.body.1").
struct LayerEmitter {
  GraphBuilder& g;
  const Arena& params;
  const Arena& buffers;

  std::vector<float> host(const Arena& a, const std::string& name) const {
    return a.tensor_to_host(name);
  }
  static bool has(const Arena& a, const std::string& name) {
    return a.layout_ptr() && a.layout().find(name).has_value();
  }

  // AdaptiveAvgPool2d whose windows differ in size or overlap (ONNX's pools have one window
  // shape): the pooling is linear in each plane, y[n, c] = x[n, c] P over the H W values, with
  // P[h W + w, oh Wo + ow] = 1 / |window| inside window (oh, ow) (rules::adaptive_begin / _end) -
  // Reshape to [N, C, H W], MatMul, Reshape to [N, C, Ho, Wo]. Each output is the window's values
  // times 1 / |window| summed, where PyTorch divides their sum: the same to float rounding.
  std::string adaptive_pool_matmul(const Shape& in, const std::vector<std::int64_t>& o,
                                   const std::string& cur, const std::string& where,
                                   const std::string& p) {
    const std::int64_t plane = in[1] * in[2], cells = o[0] * o[1];
    constexpr std::int64_t kMaxFloats = std::int64_t{1} << 24;  // 64 MiB in the file
    CUTRAIN_CHECK(plane <= kMaxFloats / cells, "export_onnx: layer ", where,
                  " (AdaptiveAvgPool2d to ", o[0], "x", o[1], ") of ", shape_str(in),
                  " would need a ", plane, " x ", cells,
                  " pooling matrix in the file (more than 2^24 values); pool to a divisor of the "
                  "input size, or to 1x1");
    std::vector<float> pool(static_cast<std::size_t>(plane * cells), 0.0F);
    for (std::int64_t oh = 0; oh < o[0]; ++oh)
      for (std::int64_t ow = 0; ow < o[1]; ++ow) {
        const std::int64_t h0 = rules::adaptive_begin(oh, in[1], o[0]);
        const std::int64_t h1 = rules::adaptive_end(oh, in[1], o[0]);
        const std::int64_t w0 = rules::adaptive_begin(ow, in[2], o[1]);
        const std::int64_t w1 = rules::adaptive_end(ow, in[2], o[1]);
        const float share = 1.0F / static_cast<float>((h1 - h0) * (w1 - w0));
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w)
            pool[static_cast<std::size_t>((h * in[2] + w) * cells + oh * o[1] + ow)] = share;
      }
    const std::array<std::int64_t, 3> planes{0, in[0], plane};  // 0: the batch, as it is
    const std::array<std::int64_t, 4> grid{0, in[0], o[0], o[1]};
    const std::string flat =
        g.node("Reshape", {cur, g.constant_i64(p + "planes_shape", planes)}, p + "planes");
    const std::string pooled =
        g.node("MatMul", {flat, g.constant(p + "pool", {plane, cells}, pool)}, p + "pooled");
    return g.node("Reshape", {pooled, g.constant_i64(p + "shape", grid)}, p + "out");
  }

  std::string emit(nn::Layer& layer, const std::string& p, const Shape& in, const Shape& out_shape,
                   std::string cur, const std::string& where) {
    const std::string kind = layer.kind();
    const nlohmann::json args = nlohmann::json::parse(layer.torch_args());
    auto at = [&p](std::string_view suffix) { return std::string(p).append(suffix); };
    const std::string out = at("out");
    if (kind == "Linear") {
      const std::vector<std::int64_t> w_dims{args.at("out_features").get<std::int64_t>(),
                                             args.at("in_features").get<std::int64_t>()};
      std::vector<std::string> inputs{cur,
                                      g.constant(at("weight"), w_dims, host(params, at("weight")))};
      if (has(params, at("bias")))
        inputs.push_back(g.constant(at("bias"), {w_dims[0]}, host(params, at("bias"))));
      cur = g.node("Gemm", inputs, out, {attr_int("transB", 1)});
    } else if (kind == "ReLU" || kind == "Tanh" || kind == "Sigmoid") {
      cur = g.node(kind == "ReLU" ? "Relu" : kind, {cur}, out);
    } else if (kind == "LeakyReLU") {
      cur = g.node("LeakyRelu", {cur}, out,
                   {attr_float("alpha", args.at("negative_slope").get<float>())});
    } else if (kind == "GELU") {  // exact: x / 2 (1 + erf(x / sqrt 2)); Gelu is opset 20
      const std::string e = g.node(
          "Erf", {g.node("Div", {cur, g.scalar(at("sqrt2"), std::sqrt(2.0F))}, at("scaled"))},
          at("erf"));
      const std::string one_plus = g.node("Add", {e, g.scalar(at("one"), 1.0F)}, at("one_plus"));
      cur = g.node(
          "Mul", {g.node("Mul", {cur, one_plus}, at("product")), g.scalar(at("half"), 0.5F)}, out);
    } else if (kind == "SiLU") {
      cur = g.node("Mul", {cur, g.node("Sigmoid", {cur}, at("sigmoid"))}, out);
    } else if (kind == "ReLU6") {  // Clip's bounds are inputs from opset 11
      cur = g.node("Clip", {cur, g.scalar(at("min"), 0.0F), g.scalar(at("max"), 6.0F)}, out);
    } else if (kind == "Hardswish") {  // opset 14: x max(0, min(1, x / 6 + 1 / 2))
      cur = g.node("HardSwish", {cur}, out);
    } else if (kind == "ELU") {
      cur = g.node("Elu", {cur}, out, {attr_float("alpha", args.at("alpha").get<float>())});
    } else if (kind == "Dropout") {
      cur = g.node("Identity", {cur}, out);  // eval semantics
    } else if (kind == "BatchNorm1d" || kind == "BatchNorm2d") {
      const std::int64_t c = args.at("num_features").get<std::int64_t>();
      const auto n = static_cast<std::size_t>(c);
      const bool affine = has(params, at("weight"));
      const std::vector<float> gamma =
          affine ? host(params, at("weight")) : std::vector<float>(n, 1.0F);
      const std::vector<float> beta =
          affine ? host(params, at("bias")) : std::vector<float>(n, 0.0F);
      cur = g.node("BatchNormalization",
                   {cur, g.constant(at("weight"), {c}, gamma), g.constant(at("bias"), {c}, beta),
                    g.constant(at("running_mean"), {c}, host(buffers, at("running_mean"))),
                    g.constant(at("running_var"), {c}, host(buffers, at("running_var")))},
                   out, {attr_float("epsilon", args.at("eps").get<float>())});
    } else if (kind == "Conv2d") {
      const std::vector<std::int64_t> k = pair_of(args, "kernel_size");
      const std::vector<std::int64_t> pad = pair_of(args, "padding");
      const std::int64_t co = args.at("out_channels").get<std::int64_t>();
      const std::int64_t groups = args.value("groups", std::int64_t{1});  // torch_args: if not 1
      std::vector<std::string> inputs{
          cur, g.constant(at("weight"),
                          {co, args.at("in_channels").get<std::int64_t>() / groups, k[0], k[1]},
                          host(params, at("weight")))};
      if (has(params, at("bias")))
        inputs.push_back(g.constant(at("bias"), {co}, host(params, at("bias"))));
      cur = g.node("Conv", inputs, out,
                   {attr_ints("kernel_shape", k), attr_ints("strides", pair_of(args, "stride")),
                    attr_ints("pads", {pad[0], pad[1], pad[0], pad[1]}),
                    attr_ints("dilations", pair_of(args, "dilation")), attr_int("group", groups)});
    } else if (kind == "MaxPool2d" || kind == "AvgPool2d") {
      const std::vector<std::int64_t> pad = pair_of(args, "padding");
      std::vector<Writer> attrs{attr_ints("kernel_shape", pair_of(args, "kernel_size")),
                                attr_ints("strides", pair_of(args, "stride")),
                                attr_ints("pads", {pad[0], pad[1], pad[0], pad[1]})};
      if (kind == "AvgPool2d")
        attrs.push_back(attr_int("count_include_pad", 1));  // torch's default
      cur = g.node(kind == "MaxPool2d" ? "MaxPool" : "AveragePool", {cur}, out, attrs);
    } else if (kind == "AdaptiveAvgPool2d") {
      const std::vector<std::int64_t> o = pair_of(args, "output_size");
      CUTRAIN_CHECK(in.size() == 3, "export_onnx: layer ", where, " (AdaptiveAvgPool2d) takes ",
                    shape_str(in), ", not [C, H, W]");
      if (o[0] == 1 && o[1] == 1) {
        cur = g.node("GlobalAveragePool", {cur}, out);
      } else if (in[1] % o[0] == 0 && in[2] % o[1] == 0) {
        // The windows are fixed-size and disjoint exactly when the output divides the input.
        const std::vector<std::int64_t> win{in[1] / o[0], in[2] / o[1]};
        cur = g.node("AveragePool", {cur}, out,
                     {attr_ints("kernel_shape", win), attr_ints("strides", win)});
      } else {
        cur = adaptive_pool_matmul(in, o, cur, where, p);
      }
    } else if (kind == "Flatten") {
      cur = g.node("Flatten", {cur}, out, {attr_int("axis", 1)});
    } else if (kind == "Unflatten") {
      std::vector<std::int64_t> shape{-1};
      for (const std::int64_t d : out_shape) shape.push_back(d);
      cur = g.node("Reshape", {cur, g.constant_i64(at("shape"), shape)}, out);
    } else if (kind == "Residual") {  // x + body(x), or shortcut(x) + body(x)
      auto& block = static_cast<nn::Residual&>(layer);
      std::string body = cur;
      for (std::size_t j = 0; j < block.size(); ++j) {
        const std::string inner = "body." + std::to_string(j);
        body = emit(block.layer(j), at(inner).append("."), block.shape(j), block.shape(j + 1), body,
                    std::string(where).append(".").append(inner));
      }
      std::string shortcut = cur;
      for (std::size_t j = 0; j < block.shortcut_size(); ++j) {
        const std::string inner = "shortcut." + std::to_string(j);
        shortcut = emit(block.shortcut_layer(j), at(inner).append("."), block.shortcut_shape(j),
                        block.shortcut_shape(j + 1), shortcut,
                        std::string(where).append(".").append(inner));
      }
      cur = g.node("Add", {shortcut, body}, out);
    } else {
      CUTRAIN_FAIL("export_onnx: layer ", where, " (", kind, ") has no ONNX form in cutrain");
    }
    return cur;
  }
};

}  // namespace

std::string onnx_model_bytes(nn::Sequential& model, const OnnxOptions& options) {
  CUTRAIN_CHECK(model.built(), "export_onnx: the model is not built");
  data::check_eval_augment(options.augment, model.input_features(), "export_onnx");
  GraphBuilder g;
  std::string cur = "input";
  if (options.data) cur = prepare(g, *options.data, cur, model.input_features());
  if (options.augment.flip)
    cur = with_mirror_images(g, cur, options.augment, model.input_features());
  LayerEmitter emitter{g, model.parameters(), model.buffers()};
  for (std::size_t i = 0; i < model.size(); ++i)
    cur = emitter.emit(model.layer(i), "layers." + std::to_string(i) + ".", model.shape(i),
                       model.shape(i + 1), cur, std::to_string(i));
  if (options.augment.flip) {  // [2 batch, K] -> [2, batch, K] -> the mean of the halves
    const std::array<std::int64_t, 3> halves{2, -1, model.output_features()};
    cur = g.node(
        "ReduceMean",
        {g.node("Reshape", {cur, g.constant_i64("flip.halves_shape", halves)}, "flip.halves")},
        "flip.mean", {attr_ints("axes", {0}), attr_int("keepdims", 0)});
  }
  const std::string result = options.softmax ? "probabilities" : "logits";
  if (options.softmax)
    g.node("Softmax", {cur}, result, {attr_int("axis", 1)});
  else
    g.node("Identity", {cur}, result);

  Writer& graph = g.graph();
  graph.bytes(2, "cutrain");
  graph.message(11, value_info("input", model.input_features()));
  graph.message(12, value_info(result, model.output_features()));

  // ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8
  // (OperatorSetIdProto: domain 1 empty = ai.onnx, version 2), metadata_props 14 (key 1, value 2).
  Writer opset, m;
  opset.varint(2, kOpset);
  m.varint(1, kIrVersion).bytes(2, "cutrain").bytes(3, CUTRAIN_VERSION_STRING);
  m.message(7, graph).message(8, opset);
  auto meta = [&](std::string_view key, const std::string& value) {
    Writer e;
    e.bytes(1, key).bytes(2, value);
    m.message(14, e);
  };
  meta("cutrain.modules", model.torch_modules());
  if (options.data) meta(kDataSpecKey, options.data->to_json());
  if (!options.class_names.empty())
    meta("cutrain.classes", nlohmann::json(options.class_names)
                                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return m.data();
}

void export_onnx(const std::string& path, nn::Sequential& model, const OnnxOptions& options) {
  const std::string bytes = onnx_model_bytes(model, options);
  io::write_file_atomic(path, {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

}  // namespace cutrain::train
