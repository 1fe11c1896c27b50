// Regression from a CSV file, as a C++ user does: numbers with the target in the last column,
// read with data::read_csv, split into train / validation / test, features standardized with
// the training split's statistics, an MLP trained with mean squared error (the Trainer picks it
// for data with float targets), early stopping on the validation loss, then the test MSE and R^2
// against predicting the training mean; then the model exported, rebuilt from the file alone
// (train::load_model) and checked to predict what the trained one does.
//   build/bin/regression_csv [file.csv]
// Without a file it writes Friedman's benchmark function #1 (Friedman 1991, "Multivariate
// adaptive regression splines"): y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + N(0, 1),
// x ~ U(0, 1)^10 of which five do not matter; the noise bounds the best test MSE at about 1.
#include <cutrain/cutrain.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

namespace {

std::string write_friedman1(std::int64_t rows) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "cutrain_friedman1.csv").string();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::ofstream out(path);
  out << "x1,x2,x3,x4,x5,x6,x7,x8,x9,x10,y\n";
  for (std::int64_t r = 0; r < rows; ++r) {
    double x[10];
    for (double& v : x) v = u(rng);
    const double y = 10 * std::sin(std::numbers::pi * x[0] * x[1]) +
                     20 * (x[2] - 0.5) * (x[2] - 0.5) + 10 * x[3] + 5 * x[4] + noise(rng);
    for (const double v : x) out << v << ",";
    out << y << "\n";
  }
  return path;
}

double variance(const std::vector<float>& v, double mean) {
  double s = 0;
  for (const float x : v) s += (x - mean) * (x - mean);
  return s / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cutrain;
  try {
    const std::string path = argc > 1 ? argv[1] : write_friedman1(4000);
    data::CsvOptions csv;
    csv.classification = false;  // the last column is a float target
    const data::Dataset all = data::read_csv(path, csv);
    auto [rest, test] = data::split(all, /*validation_fraction=*/0.2, /*seed=*/1);
    auto [train, val] = data::split(rest, 0.2, 2);
    const auto standardizer = data::Standardizer::fit(train);  // training statistics only
    for (data::Dataset* d : {&train, &val, &test}) standardizer.apply(*d);

    const Device device = default_device();
    nn::Sequential model(train.features);
    model.emplace<nn::Linear>(train.features, 64)
        .emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    model.emplace<nn::Linear>(64, 64).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
    model.emplace<nn::Linear>(64, 1);
    model.build(device, /*seed=*/1);

    optim::Adam opt(model.parameters(), {.lr = 3e-3F});
    train::TrainerOptions o;
    o.epochs = 150;
    o.batch_size = 64;
    o.patience = 20;  // keeps the epoch with the best validation MSE (restore_best)
    const std::int64_t steps = (train.rows + o.batch_size - 1) / o.batch_size;
    o.schedule = std::make_shared<optim::CosineLr>(3e-3, o.epochs * steps);
    o.progress = false;
    train::Trainer trainer(model, opt, o);
    const train::FitResult fit = trainer.fit(train, &val);

    const double test_mse = trainer.evaluate(test).loss;
    double train_mean = 0;
    for (const float y : train.targets) train_mean += y;
    train_mean /= static_cast<double>(train.rows);
    const double baseline = variance(test.targets, train_mean);  // MSE of predicting the mean
    std::printf(
        "%s on %s: %lld train / %lld validation / %lld test rows, %zu epochs (best %lld); test "
        "MSE %.3f vs %.3f predicting the mean: R^2 = %.3f\n",
        path.c_str(), device.str().c_str(), static_cast<long long>(train.rows),
        static_cast<long long>(val.rows), static_cast<long long>(test.rows), fit.history.size(),
        static_cast<long long>(fit.best_epoch), test_mse, baseline, 1.0 - test_mse / baseline);
    // Deploying: the export carries the architecture (Note [architecture in exports]), so
    // load_model rebuilds the model - here on the CPU - without restating its layers, and
    // predicts what the trained one does (PyTorch: tools/cutrain_torch.py build_model).
    const std::string exported =
        (std::filesystem::temp_directory_path() / "cutrain_regression.safetensors").string();
    train::export_torch(exported, model);
    nn::Sequential deployed = train::load_model(exported, Device::cpu());
    const std::vector<float> mine = trainer.predict(test);
    const std::vector<float> theirs = train::predict(deployed, test);  // no optimizer, no trainer
    double gap = 0;
    for (std::size_t i = 0; i < mine.size(); ++i)
      gap = std::max(gap, std::abs(static_cast<double>(mine[i]) - theirs[i]));
    std::printf("reloaded from %s: predictions within %.3g of the trained model's\n",
                exported.c_str(), gap);
    const bool reloaded = gap <= 1e-4 * (1.0 + std::sqrt(baseline));     // GPU vs CPU GEMMs differ
    return reloaded && (argc > 1 || test_mse < 0.2 * baseline) ? 0 : 1;  // Friedman #1: R^2 > 0.8
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
