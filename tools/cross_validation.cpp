// Note [cross-validation] (tools/cross_validation.hpp).
#include "tools/cross_validation.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tools/run_report.hpp"

namespace cutrain::tools {
namespace {

struct Summary {
  double mean = 0, std = 0, min = 0, max = 0;
};

Summary summarize(const std::vector<double>& v) {
  Summary s;
  if (v.empty()) return s;
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (const double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(v.size()));
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

nlohmann::json to_json(const std::vector<double>& v, const Summary& s) {
  return {{"per_fold", v}, {"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max}};
}

// The fold's data: what was read (names, scale, the spec so far), the rows of fold k as
// validation and the others for training, both in the file's order (data::fold_split's parts).
TrainData fold_data(const Config& c, const TrainData& raw,
                    const std::vector<std::int64_t>& val_rows) {
  TrainData d;
  d.regression = raw.regression;
  d.target_names = raw.target_names;
  d.class_names = raw.class_names;
  d.spec = raw.spec;
  std::vector<std::int64_t> train_rows;
  std::size_t next = 0;
  for (std::int64_t r = 0; r < raw.train.rows; ++r) {
    if (next < val_rows.size() && val_rows[next] == r)
      ++next;
    else
      train_rows.push_back(r);
  }
  d.train = raw.train.subset(train_rows);
  d.val = raw.train.subset(val_rows);
  fit_preprocessing(d, c);
  return d;
}

}  // namespace

int run_cross_validation(const Config& c, const TrainData& raw, Device device,
                         const std::vector<std::int64_t>& hidden, const std::string& command_line) {
  if (c.folds > raw.train.rows)
    throw UsageError("--folds " + std::to_string(c.folds) + " is more than the " +
                     std::to_string(raw.train.rows) + " training samples");
  std::printf(
      "cross-validation: %lld folds of the %lld training samples%s; the test set is not "
      "used\n",
      static_cast<long long>(c.folds), static_cast<long long>(raw.train.rows),
      c.stratify ? " (stratified)" : "");
  // Each fold's rows, ascending: 0-based data rows of the training file (after --train-subset).
  std::vector<std::vector<std::int64_t>> rows(static_cast<std::size_t>(c.folds));
  const std::vector<std::int64_t> fold_of =
      data::assign_folds(raw.train, c.folds, c.seed, c.stratify);
  for (std::int64_t r = 0; r < raw.train.rows; ++r)
    rows[static_cast<std::size_t>(fold_of[static_cast<std::size_t>(r)])].push_back(r);
  std::vector<double> losses, accuracies, seconds;
  std::vector<double> r2s, maes;   // regression: over the targets, their mean
  std::vector<float> out_of_fold;  // --predictions: each row by the model that did not see it
  std::int64_t width = 0;
  for (std::int64_t k = 0; k < c.folds; ++k) {
    const TrainData d = fold_data(c, raw, rows[static_cast<std::size_t>(k)]);
    nn::Sequential model = make_model(c, hidden, d.train.features, d.outputs, device);
    if (k == 0) std::printf("model:\n%s", model.summary().c_str());
    auto opt = make_optimizer(c, model.parameters());
    opt->set_group(nn::kNoDecayGroup, {1.0F, 0.0F});  // no weight decay on biases / BN
    train::Trainer trainer(model, *opt, trainer_options(c, d, nullptr, command_line));
    const train::FitResult fit = trainer.fit(d.train, nullptr);
    if (c.ema > 0 && trainer.state().ema_updates > 0) trainer.apply_ema();
    const train::EvalResult r = trainer.evaluate(d.val);
    if (!c.predictions.empty()) {
      width = d.outputs;
      out_of_fold.resize(static_cast<std::size_t>(raw.train.rows * width));
      const std::vector<float> p = trainer.predict(d.val);
      const std::vector<std::int64_t>& held = rows[static_cast<std::size_t>(k)];
      const auto w = static_cast<std::size_t>(width);
      for (std::size_t i = 0; i < held.size(); ++i)
        std::copy_n(p.begin() + static_cast<std::ptrdiff_t>(i * w), w,
                    out_of_fold.begin() +
                        static_cast<std::ptrdiff_t>(static_cast<std::size_t>(held[i]) * w));
    }
    double trained = 0;
    for (const train::EpochMetrics& m : fit.history) trained += m.seconds;
    losses.push_back(r.loss);
    if (!d.regression) accuracies.push_back(r.accuracy);
    if (d.regression) {
      const std::vector<train::TargetMetrics> m = trainer.regression_metrics(d.val);
      double r2 = 0, mae = 0;
      for (const train::TargetMetrics& t : m) {
        r2 += t.r2 / static_cast<double>(m.size());
        mae += t.mae / static_cast<double>(m.size());
      }
      r2s.push_back(r2);
      maes.push_back(mae);
    }
    seconds.push_back(trained);
    const std::int64_t number = k + 1;
    std::printf("fold %lld/%lld: %lld train, %lld validation: val loss %.4f",
                static_cast<long long>(number), static_cast<long long>(c.folds),
                static_cast<long long>(d.train.rows), static_cast<long long>(d.val.rows), r.loss);
    if (!d.regression) std::printf("  val accuracy %.4f", r.accuracy);
    if (d.regression) std::printf("  val R^2 %.4f  val MAE %.4g", r2s.back(), maes.back());
    std::printf("  (%zu epochs, %.2f s)\n", fit.history.size(), trained);
    std::fflush(stdout);
  }
  const Summary loss = summarize(losses), accuracy = summarize(accuracies), r2 = summarize(r2s),
                mae = summarize(maes);
  std::printf("cross-validation over %lld folds: val loss %.4f +- %.4f",
              static_cast<long long>(c.folds), loss.mean, loss.std);
  if (!raw.regression)
    std::printf(", val accuracy %.4f +- %.4f (min %.4f, max %.4f)", accuracy.mean, accuracy.std,
                accuracy.min, accuracy.max);
  else
    std::printf(", val R^2 %.4f +- %.4f, val MAE %.4g +- %.4g", r2.mean, r2.std, mae.mean, mae.std);
  std::printf("\n");
  EndOfRunOutputs written;  // Note [every output written]
  if (!c.predictions.empty())
    written.attempt("--predictions", [&] {
      write_predictions(c.predictions, out_of_fold, width, raw.regression, raw.target_names,
                        raw.train.class_names, raw.train.row_ids, c.id_column);
    });
  if (!c.report.empty()) {
    nlohmann::json cv = {{"folds", c.folds},
                         {"stratified", c.stratify},
                         {"val_loss", to_json(losses, loss)},
                         {"train_seconds", seconds},
                         {"val_rows", rows}};
    if (!raw.regression) cv["val_accuracy"] = to_json(accuracies, accuracy);
    if (raw.regression) {
      cv["val_r2"] = to_json(r2s, r2);
      cv["val_mae"] = to_json(maes, mae);
    }
    written.attempt("--report", [&] {
      write_report(c.report, {{"cross_validation", cv},
                              {"device", describe(device)},
                              {"training_samples", raw.train.rows},
                              {"command", command_line}});
    });
  }
  written.check();
  return 0;
}

}  // namespace cutrain::tools
