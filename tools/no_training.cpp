// tools/no_training.hpp.
#include "tools/no_training.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "cutrain/cutrain.hpp"
#include "tools/feature_columns.hpp"
#include "tools/run_report.hpp"
#include "tools/train_data.hpp"

namespace cutrain::tools {

int run_find_lr(const Config& c, nn::Sequential& model, optim::Optimizer& opt,
                const data::Dataset& train, const std::vector<float>& class_weights,
                const std::string& device, const std::string& command_line) {
  const train::LrFinderResult r = train::find_lr(model, opt, train,
                                                 {.min_lr = c.find_lr_min,
                                                  .max_lr = c.find_lr_max,
                                                  .steps = c.find_lr_steps,
                                                  .batch_size = c.batch_size,
                                                  .seed = c.seed,
                                                  .clip_norm = c.clip_norm,
                                                  .label_smoothing = c.label_smoothing,
                                                  .class_weights = class_weights});
  std::printf("learning-rate range test (%s, batch %lld):\n%12s %12s %12s\n", opt.name().c_str(),
              static_cast<long long>(c.batch_size), "lr", "loss", "smoothed");
  for (std::size_t k = 0; k < r.lrs.size(); ++k)
    if (k % 5 == 0 || k + 1 == r.lrs.size() || static_cast<std::int64_t>(k) == r.suggested_index)
      std::printf("%12.4g %12.5g %12.5g%s\n", r.lrs[k], r.losses[k], r.smoothed[k],
                  static_cast<std::int64_t>(k) == r.suggested_index ? "  <- steepest descent" : "");
  if (r.diverged) std::printf("diverged at lr %.4g: the sweep stopped\n", r.lrs.back());
  if (r.suggested_index >= 0)
    std::printf("suggested --lr %.3g (where the smoothed loss falls fastest)\n", r.suggested_lr);
  else
    std::printf("no suggestion: the loss did not fall over enough steps; widen the range\n");
  if (!c.report.empty())
    write_report(c.report,
                 {{"lr_finder",
                   {{"lrs", r.lrs},
                    {"losses", r.losses},
                    {"smoothed", r.smoothed},
                    {"diverged", r.diverged},
                    {"suggested_lr", r.suggested_index >= 0 ? nlohmann::json(r.suggested_lr)
                                                            : nlohmann::json(nullptr)}}},
                  {"device", device},
                  {"command", command_line}});
  return 0;
}

namespace {

// Note [flags without training]: the runs that train nothing from a model file - predicting,
// converting to ONNX - take the flags listed and refuse every other one given, naming it. A deny
// list let the training flags through (--lr, --precision, --ema, ... were ignored without a
// word) and --export-onnx beside --predictions exited 0 without writing its file.
constexpr const char* kPredictFlags[] = {
    "--model-from",   "--predict-csv",  "--predict-npy", "--predictions",
    "--device",       "--batch-size",   "--id-column",   "--csv-separator",
    "--csv-decimal",  "--csv-header",   "--overwrite",   "--export-onnx",
    "--onnx-softmax", "--onnx-no-prep", "--eval-flip",   "--input-shape"};
// (--device: the flag of every command a script writes; a conversion runs on the CPU.)
constexpr const char* kConvertFlags[] = {"--model-from",   "--export-onnx", "--onnx-softmax",
                                         "--onnx-no-prep", "--overwrite",   "--device",
                                         "--eval-flip",    "--input-shape"};
constexpr const char* kDataFlags[] = {"--val-csv",      "--standardize",  "--target",
                                      "--regression",   "--train-subset", "--val-fraction",
                                      "--categorical",  "--impute",       "--stratify",
                                      "--drop-columns", "--max-classes"};

// `mode`: "--model-from with ... and no training data only predicts"; `doing`: "predicting".
void check_only(const Config& c, std::span<const char* const> allowed, const char* mode,
                const char* doing) {
  const auto listed = [](std::span<const char* const> flags, const std::string& flag) {
    return std::find(flags.begin(), flags.end(), std::string_view(flag)) != flags.end();
  };
  for (const std::string& flag : c.given) {
    if (listed(allowed, flag)) continue;
    if (listed(kDataFlags, flag))
      throw UsageError(flag + ": " + doing +
                       " from --model-from alone takes the model file's own data handling; drop "
                       "it, or give the training data with --train-csv/--data");
    std::string why = flag + ": " + mode + " (it takes ";
    for (const char* a : allowed) {
      if (a != allowed.front()) why += ", ";
      why += a;
    }
    why += "); drop it";
    throw UsageError(why);
  }
}

}  // namespace

int run_predict_only(const Config& c) {
  check_only(c, kPredictFlags,
             "--model-from with --predict-csv (or --predict-npy) and no training data only "
             "predicts",
             "predicting");
  Device device = c.device == "auto" ? default_device() : Device::parse(c.device);
  require_usable(device);
  nn::Sequential model = train::load_model(c.model_from, device, c.seed);
  const std::map<std::string, std::string> meta = train::read_metadata(c.model_from);
  const auto found = meta.find(train::kDataSpecKey);
  const train::DataSpec spec = found == meta.end()
                                   ? train::DataSpec{}  // e.g. from PyTorch: raw features
                                   : train::DataSpec::from_json(found->second, c.model_from);
  // The data spec must prepare the features the model takes (a damaged or edited export said
  // "Standardizer::apply: fit on 3 features, applied to 784" only after reading the data).
  for (const auto& [what, size] : {std::pair{"standardizes", spec.mean.size()},
                                   std::pair{"fills missing values of", spec.impute.size()}})
    if (size != 0 && static_cast<std::int64_t>(size) != model.input_features())
      throw UsageError(cutrain::detail::cat("--model-from '", c.model_from, "': its data spec ",
                                            what, " ", size, " features but the model takes ",
                                            model.input_features(),
                                            " (a damaged or edited file: export it again)"));
  const bool npy = !c.predict_npy.empty();
  const std::string& input = npy ? c.predict_npy : c.predict_csv;
  // Note [id column]: the flag's, else the export's own (a CSV's only).
  const std::string id_column = npy ? "" : c.id_column.empty() ? spec.id_column : c.id_column;
  data::Dataset rows;
  if (npy) {
    rows = data::load_npy_features(c.predict_npy);
  } else {
    data::CsvOptions o = csv_format(c);
    o.features_only = true;
    o.drop_columns = spec.drop_columns;  // as the training file's were
    o.id_column = id_column;
    o.categories = spec.categorical;         // one-hot with the training file's categories
    o.allow_missing = !spec.impute.empty();  // filled as the training data was
    rows = data::read_csv(c.predict_csv, o);
  }
  if (rows.rows == 0)
    throw UsageError(std::string(npy ? "--predict-npy '" : "--predict-csv '") + input +
                     "' has no rows: nothing to predict");
  if (!npy)  // named columns first: a count says less than the column that differs
    check_feature_columns("--predict-csv '" + c.predict_csv + "'", rows.feature_columns,
                          spec.feature_columns);
  if (rows.features != model.input_features())
    throw UsageError(std::string(npy ? "--predict-npy '" : "--predict-csv '") + input + "' has " +
                     std::to_string(rows.features) + (npy ? " features" : " columns") +
                     " but the model takes " + std::to_string(model.input_features()) +
                     " features");
  // Note [id column]: the ids the flag asks for must be there; the export's own id column is
  // carried where the file has it, and said where it does not.
  if (!c.id_column.empty() && rows.row_ids.empty())
    throw UsageError("--id-column '" + c.id_column + "': --predict-csv '" + c.predict_csv +
                     "' has no such column in its header, so its predictions would have no ids");
  if (!id_column.empty() && rows.row_ids.empty())
    std::printf("note: %s has no column '%s' (the training rows' ids): predictions without ids\n",
                input.c_str(), id_column.c_str());
  const std::int64_t filled = spec.apply(rows);
  if (filled > 0)
    std::printf("imputed %lld missing values as the training run did\n",
                static_cast<long long>(filled));
  train::InferenceOptions io{.batch_size = c.batch_size};
  io.augment = eval_augment(c, model.input_features());
  write_predictions(c.predictions, train::predict(model, rows, io), model.output_features(),
                    spec.regression, spec.target_names, spec.class_names, rows.row_ids, id_column);
  std::printf("predicted %lld rows of %s with %s on %s%s -> %s\n",
              static_cast<long long>(rows.rows), input.c_str(), c.model_from.c_str(),
              describe(device).c_str(), c.eval_flip ? " with test-time flips" : "",
              c.predictions.c_str());
  return 0;
}

int run_describe(const std::string& path) {
  const std::map<std::string, std::string> meta = train::read_metadata(path);
  const auto get = [&](const char* key) {
    const auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  const bool checkpoint = get("format") == train::kCheckpointFormat;
  std::printf("%s: %s\n", path.c_str(),
              checkpoint ? "cutrain checkpoint" : "model export (torch.nn.Sequential state dict)");
  const nn::Sequential model = train::load_model(path, Device::cpu());
  std::printf("model:\n%s", model.summary().c_str());
  const auto found = meta.find(train::kDataSpecKey);
  if (found == meta.end()) {
    std::printf("data: no data spec (raw features; e.g. a model written by PyTorch)\n");
  } else {
    const train::DataSpec spec = train::DataSpec::from_json(found->second, path);
    const std::vector<std::string>& names = spec.regression ? spec.target_names : spec.class_names;
    std::string outputs;
    for (std::size_t k = 0; k < names.size(); ++k) outputs += (k ? ", " : "") + names[k];
    std::printf("data: %lld features -> %lld %s%s%s%s\n",
                static_cast<long long>(model.input_features()),
                static_cast<long long>(model.output_features()),
                spec.regression ? "regression targets" : "classes (logits)",
                outputs.empty() ? "" : " (", outputs.c_str(), outputs.empty() ? "" : ")");
    // Note [feature columns by name]: the columns a file to predict gives, in this order.
    if (!spec.feature_columns.empty()) {
      std::string columns;
      for (std::size_t k = 0; k < spec.feature_columns.size() && k < 24; ++k)
        columns += (k ? ", " : "") + spec.feature_columns[k];
      std::printf("  feature columns: %s%s\n", columns.c_str(),
                  spec.feature_columns.size() > 24 ? ", ..." : "");
    }
    if (!spec.drop_columns.empty()) {  // --drop-columns: left out of a file to predict too
      std::string dropped;
      for (const std::string& n : spec.drop_columns) dropped += (dropped.empty() ? "" : ", ") + n;
      std::printf("  dropped columns: %s\n", dropped.c_str());
    }
    if (!spec.id_column.empty())  // Note [id column]
      std::printf("  id column: %s (left out; written beside predictions)\n",
                  spec.id_column.c_str());
    for (const data::CategoricalColumn& cc : spec.categorical) {
      std::string cats;
      for (std::size_t k = 0; k < cc.categories.size() && k < 12; ++k)
        cats += (k ? ", " : "") + cc.categories[k];
      std::printf("  one-hot: feature column %lld '%s' -> %zu features (%s%s)\n",
                  static_cast<long long>(cc.column) + 1, cc.name.c_str(), cc.categories.size(),
                  cats.c_str(), cc.categories.size() > 12 ? ", ..." : "");
    }
    if (!spec.impute.empty())
      std::printf("  missing values filled per feature (%zu values)\n", spec.impute.size());
    if (spec.scale != 1.0F) std::printf("  scaled by %.9g\n", static_cast<double>(spec.scale));
    if (!spec.mean.empty()) std::printf("  standardized (%zu features)\n", spec.mean.size());
  }
  if (checkpoint && !get("batch").empty() && get("batch") != "0")
    std::printf("trained: mid-epoch, %s batches into the epoch after %s\n", get("batch").c_str(),
                get("epoch").c_str());
  if (checkpoint)
    std::printf("trained: to the end of epoch %s, %s optimizer steps%s%s\n", get("epoch").c_str(),
                get("step").c_str(), get("optimizer").empty() ? "" : ", optimizer ",
                get("optimizer").c_str());
  if (!get("command").empty()) std::printf("command: %s\n", get("command").c_str());
  return 0;
}

train::OnnxOptions onnx_options(const Config& c, const train::DataSpec& spec,
                                const std::vector<std::string>& class_names) {
  train::OnnxOptions o;
  if (!c.onnx_no_prep) o.data = spec;
  o.class_names = !spec.class_names.empty() ? spec.class_names : class_names;
  o.softmax = c.onnx_softmax;
  return o;
}

int run_export_only(const Config& c, bool predicted) {
  if (!predicted)
    check_only(c, kConvertFlags,
               "--model-from with --export-onnx and no training data only converts the model file",
               "converting");
  nn::Sequential model = train::load_model(c.model_from, Device::cpu(), c.seed);
  const std::map<std::string, std::string> meta = train::read_metadata(c.model_from);
  const auto found = meta.find(train::kDataSpecKey);
  const train::DataSpec spec = found == meta.end()
                                   ? train::DataSpec{}
                                   : train::DataSpec::from_json(found->second, c.model_from);
  train::OnnxOptions onnx = onnx_options(c, spec, {});
  onnx.augment = eval_augment(c, model.input_features());
  train::export_onnx(c.export_onnx, model, onnx);
  std::printf("onnx: %s (%zu layers, %lld inputs, %lld outputs%s)\n", c.export_onnx.c_str(),
              model.size(), static_cast<long long>(model.input_features()),
              static_cast<long long>(model.output_features()),
              c.onnx_no_prep ? "" : ", the data preparation first");
  return 0;
}

}  // namespace cutrain::tools
