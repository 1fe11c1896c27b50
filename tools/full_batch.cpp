// tools/full_batch.hpp.
#include "tools/full_batch.hpp"

#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "tools/no_training.hpp"
#include "tools/run_report.hpp"

namespace cutrain::tools {

int run_full_batch(const Config& c, nn::Sequential& model, const TrainData& d, Device device,
                   const std::string& command_line) {
  const data::Dataset& train = d.train;
  const auto n = static_cast<std::size_t>(train.rows);
  const std::int64_t outputs = model.output_features();
  Buffer x(n * static_cast<std::size_t>(train.features) * sizeof(float), device);
  // Labels (int32) or targets (float, outputs per row): the same bytes per element.
  Buffer y(n * static_cast<std::size_t>(d.regression ? outputs : 1) * 4, device);
  Buffer g(n * static_cast<std::size_t>(outputs) * sizeof(float), device);
  copy_bytes(x.data(), device, train.x.data(), Device::cpu(), x.bytes());
  copy_bytes(y.data(), device,
             d.regression ? static_cast<const void*>(train.targets.data())
                          : static_cast<const void*>(train.labels.data()),
             Device::cpu(), y.bytes());
  nn::SoftmaxCrossEntropy cross_entropy(0.0F, d.class_weights);
  nn::MseLoss mse;
  model.eval();  // full-batch: no dropout noise inside the line of iterates
  auto closure = [&] {
    nn::Matrix xm{x.as<float>(), train.rows, train.features, device};
    nn::Matrix gm{g.as<float>(), train.rows, outputs, device};
    const nn::Matrix& out = model.forward(xm);
    double value = 0;
    if (d.regression) {
      mse.compute(out, {y.as<float>(), train.rows, outputs, device}, &gm);
      value = mse.value();
    } else {
      cross_entropy.compute(out, y.as<std::int32_t>(), &gm);
      value = cross_entropy.value();
    }
    model.backward(gm);
    return value;
  };
  std::unique_ptr<optim::Lbfgs> lbfgs;
  std::unique_ptr<optim::NewtonCg> newton;
  if (c.optimizer == "lbfgs") {
    optim::LbfgsOptions o;
    o.lr = c.given.count("--lr") != 0 ? c.lr : 1.0F;  // L-BFGS's natural step is 1
    o.line_search_fn = "strong_wolfe";                // robust steps without tuning lr
    lbfgs = std::make_unique<optim::Lbfgs>(model.parameters(), model.gradients(), o);
  } else {
    newton = std::make_unique<optim::NewtonCg>(model.parameters(), model.gradients(),
                                               optim::NewtonCgOptions{});
  }
  double last_loss = std::numeric_limits<double>::quiet_NaN();
  for (std::int64_t e = 1; e <= c.epochs; ++e) {
    const double l = lbfgs ? lbfgs->step(closure) : newton->step(closure);
    last_loss = l;
    std::fprintf(stderr, "step %3lld  %s loss %.5f\n", static_cast<long long>(e),
                 c.optimizer.c_str(), l);
  }
  // The test loss is the objective's kind (class weights).
  const train::InferenceOptions eval_options{.batch_size = c.batch_size,
                                             .class_weights = d.class_weights};
  const train::EvalResult r = train::evaluate(model, d.test, eval_options);
  check_test_loss(r);
  print_test_result(r, d.regression);
  std::printf("  (%s, %lld full-batch steps)\n", c.optimizer.c_str(),
              static_cast<long long>(c.epochs));
  std::optional<ClassResults> by_class;
  std::vector<train::TargetMetrics> by_target;
  if (!d.regression) {
    by_class =
        class_results_if_small(train::predict(model, d.test, eval_options), outputs, d.test.labels);
    if (by_class) print_per_class(*by_class, d.class_names);
  } else {
    by_target = train::regression_metrics(model, d.test, eval_options);
    print_per_target(by_target, d.target_names);
  }
  train::TrainState state;
  state.epoch = c.epochs;
  const std::map<std::string, std::string> spec = {{train::kDataSpecKey, d.spec.to_json()}};
  EndOfRunOutputs written;  // Note [every output written]
  if (!c.save.empty())
    written.attempt("--save", [&] { train::save_checkpoint(c.save, model, nullptr, state, spec); });
  if (!c.export_torch.empty())
    written.attempt("--export-torch", [&] {
      train::export_torch(c.export_torch, model, spec, tools::export_dtype(c));
    });
  if (!c.export_onnx.empty())
    written.attempt("--export-onnx", [&] {
      train::export_onnx(c.export_onnx, model, onnx_options(c, d.spec, d.class_names));
    });
  if (!c.predictions.empty())
    written.attempt("--predictions", [&] {
      const data::Dataset& rows = d.predict.rows > 0 ? d.predict : d.test;
      write_predictions(c.predictions, train::predict(model, rows, eval_options), outputs,
                        d.regression, d.target_names, d.train.class_names, rows.row_ids,
                        c.id_column);
    });
  if (!c.report.empty()) {
    nlohmann::json j = {{"test_accuracy", json_number(r.accuracy)},
                        {"test_loss", r.loss},
                        {"train_loss", last_loss},  // the objective before the last step
                        {"optimizer", c.optimizer},
                        {"full_batch_steps", c.epochs},
                        {"device", describe(device)},
                        {"parameters", model.parameters().layout().parameter_count()},
                        {"command", command_line}};
    if (!d.class_weights.empty()) j["class_weights"] = d.class_weights;
    if (by_class) add_per_class(j, *by_class, d.class_names);
    if (!by_target.empty()) add_per_target(j, by_target, d.target_names);
    written.attempt("--report", [&] { write_report(c.report, j); });
  }
  written.check();
  return 0;
}

}  // namespace cutrain::tools
