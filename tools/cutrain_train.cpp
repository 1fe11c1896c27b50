// cutrain-train: trains an MLP on IDX data (Fashion-MNIST by default) and reports test accuracy.
// Run `cutrain-train --help` for every flag. Exit codes: 0 success, 2 bad arguments or missing
// data, 1 any other failure, 130 / 143 / 129 stopped by SIGINT / SIGTERM / SIGHUP (after saving,
// with --save).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "cutrain/cutrain.hpp"
#include "tools/cross_validation.hpp"
#include "tools/feature_columns.hpp"
#include "tools/full_batch.hpp"
#include "tools/no_training.hpp"
#include "tools/resume_checks.hpp"
#include "tools/run_hooks.hpp"
#include "tools/run_report.hpp"
#include "tools/train_data.hpp"
#include "tools/train_options.hpp"

using namespace cutrain;
using cutrain::tools::add_per_class;
using cutrain::tools::add_per_target;
using cutrain::tools::Config;
using cutrain::tools::json_number;
using cutrain::tools::make_optimizer;
using cutrain::tools::make_schedule;
using cutrain::tools::parse_hidden;
using cutrain::tools::print_per_class;
using cutrain::tools::print_per_target;
using cutrain::tools::print_test_result;
using cutrain::tools::run_full_batch;
using cutrain::tools::says;
using cutrain::tools::StopOnSignal;
using cutrain::tools::TimeToAccuracy;
using cutrain::tools::UsageError;
using cutrain::tools::write_predictions;
using cutrain::tools::write_report;

namespace {

// `fresh`: --resume auto found no checkpoint to continue (said once the log has begun).
int run(const Config& c, const std::string& command_line, bool fresh) {
  tools::check_paths_given(c);
  if (!c.init_optimizer_from.empty() && c.init_from.empty() && c.model_from.empty())
    throw UsageError(
        "--init-optimizer-from needs the weights its moments belong to: give --init-from (or "
        "--model-from) too");
  if (!c.init_optimizer_from.empty() && !c.resume.empty())
    throw UsageError("--init-optimizer-from and --resume both set the optimizer state: use one");
  if ((!c.init_optimizer_from.empty() || !c.export_torch_optimizer.empty()) &&
      (c.optimizer == "lbfgs" || c.optimizer == "newton-cg"))
    throw UsageError(
        "--init-optimizer-from / --export-torch-optimizer: only for the first-order "
        "optimizers (sgd, adagrad, rmsprop, adam, adamw)");
  if (c.checkpoint_every > 0 && c.save.empty())
    throw UsageError("--checkpoint-every needs --save (where to write the checkpoints)");
  if (!c.describe.empty()) {
    if (c.given.size() > 1)
      throw UsageError("--describe prints a model file and exits: give it alone");
    tools::check_inputs_exist(c);
    return tools::run_describe(c.describe);
  }
  const bool full_batch = c.optimizer == "lbfgs" || c.optimizer == "newton-cg";
  tools::check_flags_apply(c);
  tools::check_inputs_exist(c);
  if (!c.model_from.empty() && (!c.predict_csv.empty() || !c.predict_npy.empty()) &&
      c.given.count("--data") == 0 && c.given.count("--train-npy") == 0 &&
      c.given.count("--test-npy") == 0 && c.given.count("--train-csv") == 0 &&
      c.given.count("--test-csv") == 0) {
    tools::check_outputs(c);
    const int status = tools::run_predict_only(c);
    if (status != 0 || c.export_onnx.empty()) return status;
    return tools::run_export_only(c, /*predicted=*/true);  // the predictions first, then ONNX
  }
  if (!c.model_from.empty() && !c.export_onnx.empty() && c.given.count("--data") == 0 &&
      c.given.count("--train-npy") == 0 && c.given.count("--train-csv") == 0) {
    tools::check_outputs(c);
    return tools::run_export_only(c);
  }
  if (c.patience > 0 && c.val_fraction == 0 && c.val_csv.empty())
    throw UsageError(
        "--patience stops on the validation loss: hold out validation data with "
        "--val-fraction (e.g. 0.1) or --val-csv");
  // Note [the default CNN]: its classifier has one hidden layer of 128 unless --hidden says.
  const std::vector<std::int64_t> hidden =
      parse_hidden(c.model == "cnn" && c.given.count("--hidden") == 0 ? "128" : c.hidden);
  // Under mpirun: one process per device, gradients averaged over the ranks each step.
  dist::Communicator* comm = nullptr;
  if (dist::Communicator::launched_by_mpi()) comm = &dist::Communicator::world();
  const int rank = comm ? comm->rank() : 0;
  if (rank == 0) tools::check_outputs(c);  // only rank 0 writes
  Device device = c.device == "auto" ? default_device() : Device::parse(c.device);
  if (comm != nullptr && device.is_cuda() && c.device.find(':') == std::string::npos)
    device = Device::cuda(comm->local_rank() % std::max(1, cuda_status().device_count));
  require_usable(device);
  if (c.precision == "tf32" && device.is_cpu())  // before the data is read (Note [TF32 switch])
    throw UsageError(
        "--precision tf32: TF32 is a tensor-core mode of NVIDIA GPUs and this run is "
        "on the CPU, which computes in fp32; use --precision fp32 or a CUDA --device");
  if (rank != 0) std::fclose(stdout);  // only rank 0 reports
  std::printf("device: %s", describe(device).c_str());
  if (comm != nullptr)
    std::printf("  (%d ranks, batch %lld per rank)", comm->size(),
                static_cast<long long>(c.batch_size));
  if (c.precision != "fp32") std::printf("  precision %s", c.precision.c_str());
  std::printf("\n");
  if (device.is_cpu() && c.device == "auto")
    std::printf("  (no GPU: %s)\n", cuda_status().reason.c_str());
  if (fresh)
    std::printf("resume auto: no checkpoint at %s yet: training from the start\n", c.save.c_str());

  if (c.folds > 0) {
    if (comm != nullptr && comm->size() > 1)
      throw UsageError("--folds: run the cross-validation in one process, not under mpirun");
    return tools::run_cross_validation(c, tools::read_train_data(c), device, hidden, command_line);
  }
  tools::TrainData d = tools::load_train_data(c);
  tools::check_starting_weights_columns(c, d);  // Note [feature columns by name]
  const data::Dataset &train = d.train, &val = d.val, &test = d.test;
  tools::print_data_summary(c, d, device);
  nn::Sequential model = tools::make_model(c, hidden, train.features, d.outputs, device);
  std::printf("model:\n%s", model.summary().c_str());
  if (c.sync_batchnorm) {  // Note [synchronized batch statistics]
    if (model.torch_modules().find("\"BatchNorm") == std::string::npos)
      throw UsageError(
          "--sync-batchnorm: the model has no BatchNorm layer to synchronize (--model cnn, or "
          "--batchnorm for the MLP, has them)");
    if (comm == nullptr || comm->size() == 1)
      std::printf("--sync-batchnorm: one rank, nothing to synchronize\n");
  }
  // Flags for another setting (a script written for mpirun or a GPU): harmless here, said so
  // rather than refused, so that one command serves every machine.
  if (c.given.count("--bucket-mb") != 0 && c.bucket_mb > 0 &&
      (comm == nullptr || comm->size() == 1))
    std::printf("--bucket-mb: one rank, no gradient all-reduce to bucket\n");
  if (c.resident_data && device.is_cpu())
    std::printf("--resident-data: on the CPU the training set is in memory already\n");
  // Weights of another model (a tensor missing or of another shape) are the flag's mismatch with
  // the model flags, as a --resume checkpoint of another model is: exit 2.
  if (!c.init_from.empty()) {
    try {
      train::load_weights(c.init_from, model);
    } catch (const Error& e) {
      if (!says(e, "is missing") && !says(e, "but the model expects")) throw;
      throw UsageError("--init-from: " + std::string(e.what()) + " (cutrain-train --describe " +
                       c.init_from + " shows the model it holds)");
    }
  }

  // A --model-from model's BatchNorm layers normalize with the running statistics it brings,
  // which the full-batch optimizers' eval-mode passes keep frozen (fine-tuning); the flags
  // refuse the fresh models', whose statistics nothing has learned.
  if (full_batch) return run_full_batch(c, model, d, device, command_line);
  auto opt = make_optimizer(c, model.parameters());
  opt->set_group(nn::kNoDecayGroup, {1.0F, 0.0F});  // no weight decay on biases / BN
  if (c.find_lr) {
    if (comm != nullptr && comm->size() > 1)
      throw UsageError("--find-lr: run the learning-rate range test in one process");
    return tools::run_find_lr(c, model, *opt, train, d.class_weights, describe(device),
                              command_line);
  }
  if (!c.init_optimizer_from.empty())
    train::import_torch_optimizer(c.init_optimizer_from, model, *opt);
  train::TrainerOptions to = tools::trainer_options(c, d, comm, command_line);
  // Note [arithmetic on resume]
  to.checkpoint_metadata[tools::kArithmeticKey] = tools::arithmetic(describe(device));
  if (c.cuda_graph == "on")  // Note [the step as one CUDA graph]: exit 2 before any training
    if (const std::string why = train::cuda_graph_blocker(model, to); !why.empty())
      throw UsageError("--cuda-graph on: " + why + "; use --cuda-graph auto or off");
  train::Trainer trainer(model, *opt, to);
  // A checkpoint of another configuration (model, optimizer, precision, loss scaling, loss
  // options, augmentation, data order, ranks: the refusals that say how to resume) is the flags'
  // mismatch, not a damaged file: exit 2, saying where its own flags are. resume() checks the
  // file, fit() the loss, the augmentation and the order.
  const auto refused_resume = [&](const Error& e) {
    // A model export (or PyTorch's weights) given to --resume: the flag's mistake, and the flag
    // that takes such a file is --init-from (the library's hint names its C++ function).
    if (!c.resume.empty() && says(e, "not a cutrain checkpoint"))
      throw UsageError("--resume '" + c.resume +
                       "' holds weights without a training state (a model export?): start from "
                       "them with --init-from, or give a checkpoint written by --save");
    if (c.resume.empty() ||
        !(says(e, "resume with") || says(e, "so resume on") || says(e, "to continue it")))
      throw;  // the caught error, as it was
    throw UsageError("--resume: " + std::string(e.what()) + " (cutrain-train --describe " +
                     c.resume + " shows the command it was trained with)");
  };
  if (!c.resume.empty()) {
    const tools::Metadata meta = tools::resume_metadata(c);  // the checkpoint read once
    tools::check_resume_split(c, meta);                      // Note [validation split on resume]
    tools::note_resume_arithmetic(meta, tools::arithmetic(describe(device)));
    tools::note_resume_schedule(c, meta);
    try {
      trainer.resume(c.resume);
    } catch (const Error& e) {
      refused_resume(e);
    }
    std::printf("resumed from %s after epoch %lld", c.resume.c_str(),
                static_cast<long long>(trainer.state().epoch));
    if (trainer.state().batch > 0)
      std::printf(" and batch %lld of the next", static_cast<long long>(trainer.state().batch));
    std::printf("\n");
    std::fflush(stdout);  // before the trainer's progress lines on stderr
  }
  auto target = std::make_shared<TimeToAccuracy>(trainer, test, c.target_accuracy);
  if (c.target_accuracy > 0) trainer.add_callback(target);
  train::FitResult fit;
  {
    const StopOnSignal stop_on_signal(trainer);
    try {
      fit = trainer.fit(train, val.rows > 0 ? &val : nullptr);
    } catch (const Error& e) {
      refused_resume(e);
    }
  }
  if (fit.interrupted) {
    const train::TrainState& st = trainer.state();
    std::printf("interrupted after epoch %lld", static_cast<long long>(st.epoch));
    if (st.batch > 0) std::printf(" and batch %lld of the next", static_cast<long long>(st.batch));
    std::printf(": ");
    if (c.save.empty())
      std::printf("nothing saved (no --save)\n");
    else
      std::printf("checkpoint %s (continue with --resume %s)\n", c.save.c_str(), c.save.c_str());
    std::fflush(stdout);
    return 128 + StopOnSignal::received();
  }
  // Early stopping's restore_best: say which epoch's weights the test figures below are of.
  const bool restored = fit.best_epoch > 0 && fit.best_epoch != trainer.state().epoch;
  if (restored && rank == 0)
    std::printf("%s after epoch %lld; the weights of epoch %lld (best validation %s) restored\n",
                fit.stopped_early ? "stopped early" : "finished",
                static_cast<long long>(trainer.state().epoch),
                static_cast<long long>(fit.best_epoch),
                c.monitor == "val_accuracy" ? "accuracy" : "loss");
  // The weights to keep: with --ema the average - unless fit() restored the best epoch's, which
  // are that epoch's average already.
  if (c.ema > 0 && trainer.state().ema_updates > 0 && !restored) trainer.apply_ema();
  const train::EvalResult result = trainer.evaluate(test);
  tools::check_test_loss(result);
  if (c.target_accuracy > 0) {
    if (target->epoch > 0)
      std::printf("reached test accuracy %.4f >= %.4g after epoch %lld: %.2f s of training\n",
                  target->accuracy, c.target_accuracy, static_cast<long long>(target->epoch),
                  target->seconds);
    else
      std::printf("test accuracy never reached %.4g (best %.4f)\n", c.target_accuracy,
                  target->per_epoch.empty()
                      ? 0.0
                      : *std::max_element(target->per_epoch.begin(), target->per_epoch.end()));
  }
  // Note [every output written]: an output that cannot be written at the end (a full disk, a
  // pipe's reader gone) costs the run that output, not the others: each is attempted, the
  // failures are printed as they happen and the run exits 1 after the last.
  tools::EndOfRunOutputs outputs;
  if (!c.predictions.empty() && rank == 0)
    outputs.attempt("--predictions", [&] {
      const data::Dataset& rows = c.predict_npy.empty() && c.predict_csv.empty() ? test : d.predict;
      write_predictions(c.predictions, trainer.predict(rows), d.outputs, d.regression,
                        d.target_names, d.train.class_names,  // names of text labels only
                        rows.row_ids, c.id_column);
    });
  if (!c.export_torch.empty() && rank == 0)
    outputs.attempt("--export-torch", [&] {
      train::export_torch(c.export_torch, model, {{train::kDataSpecKey, d.spec.to_json()}},
                          tools::export_dtype(c));
    });
  if (!c.export_torch_optimizer.empty() && rank == 0)
    outputs.attempt("--export-torch-optimizer",
                    [&] { train::export_torch_optimizer(c.export_torch_optimizer, model, *opt); });
  if (!c.export_onnx.empty() && rank == 0)
    outputs.attempt("--export-onnx", [&] {
      train::OnnxOptions onnx = tools::onnx_options(c, d.spec, d.class_names);
      onnx.augment = to.eval_augment;  // --eval-flip: ONNX predicts as --predictions does
      train::export_onnx(c.export_onnx, model, onnx);
    });
  // The run's rate: all the samples over all the seconds (a mean of the epochs' rates would
  // overstate it - its product with the mean epoch is not the epoch's samples).
  double seconds = 0, samples = 0, issue = 0;
  std::int64_t skipped = 0;
  for (const auto& m : fit.history) {
    skipped += m.skipped_steps;
    seconds += m.seconds;
    samples += m.samples_per_second * m.seconds;
    issue += m.issue_seconds;
  }
  const auto n = static_cast<double>(std::max<std::size_t>(1, fit.history.size()));
  const double sps = seconds > 0 ? samples / seconds : 0.0;
  print_test_result(result, d.regression);
  if (fit.history.empty())  // a resume of a finished run (or --epochs 0): no rate to give
    std::printf("  (no epoch trained in this run)\n");
  else
    std::printf("  (%zu epochs, %.2f s/epoch, %.0f samples/s)\n", fit.history.size(), seconds / n,
                sps);
  if (device.is_cuda() && rank == 0) {  // Note [the step as one CUDA graph]: which path ran
    if (fit.graph_steps > 0)
      std::printf("  steps: CUDA graphs of %lld operations, %lld batches replayed\n",
                  static_cast<long long>(fit.graph_nodes), static_cast<long long>(fit.graph_steps));
    else
      std::printf("  steps: %s\n", fit.step_path.c_str());
  }
  // Note [convolutions on cuDNN]: how the (first) convolution ran on the GPU.
  std::string convolutions;
  for (std::size_t i = 0; i < model.size() && convolutions.empty(); ++i)
    if (const auto* conv = dynamic_cast<const nn::Conv2d*>(&model.layer(i)); conv != nullptr)
      convolutions = conv->gpu_algorithm();
  if (!convolutions.empty() && rank == 0) std::printf("  convolutions: %s\n", convolutions.c_str());
  // The test set by class (one more pass over it, in eval mode).
  std::optional<tools::ClassResults> by_class;
  std::vector<train::TargetMetrics> by_target;
  if (!d.regression && rank == 0) {  // predict() has no collectives: rank 0 alone
    by_class = tools::class_results_if_small(trainer.predict(test), d.outputs, test.labels);
    if (by_class) print_per_class(*by_class, d.class_names);
  } else if (rank == 0) {
    by_target = trainer.regression_metrics(test);
    print_per_target(by_target, d.target_names);
  }
  if (!c.report.empty() && rank == 0) {
    nlohmann::json j = {
        {"test_accuracy", json_number(result.accuracy)},
        {"test_loss", result.loss},
        {"train_loss", fit.history.empty() ? 0.0 : fit.history.back().train_loss},
        {"epochs", fit.history.size()},
        {"seconds_per_epoch", seconds / n},
        {"samples_per_second", sps},
        // host time to enqueue an epoch's steps: ~seconds_per_epoch when the
        // host's launches, not the GPU, set the pace
        {"issue_seconds_per_epoch", issue / n},
        {"device", describe(device)},
        {"precision", c.precision},
        {"loss_scale", c.loss_scale},
        {"augment", {{"shift", c.augment_shift}, {"flip", c.augment_flip}}},
        {"eval_flip", c.eval_flip},
        {"step_path", fit.step_path},
        {"convolutions", convolutions},
        {"graph_steps", fit.graph_steps},
        {"skipped_steps", skipped},
        {"stopped_early", fit.stopped_early},
        {"best_epoch", fit.best_epoch > 0 ? nlohmann::json(fit.best_epoch) : nullptr},
        {"parameters", model.parameters().layout().parameter_count()},
        {"command", command_line}};
    if (c.target_accuracy > 0) {
      j["target_accuracy"] = c.target_accuracy;
      j["test_accuracy_per_epoch"] = target->per_epoch;
      j["epochs_to_target"] = target->epoch > 0 ? nlohmann::json(target->epoch) : nullptr;
      j["time_to_target_s"] = target->epoch > 0 ? nlohmann::json(target->seconds) : nullptr;
    }
    if (!d.class_weights.empty()) j["class_weights"] = d.class_weights;  // test_loss weighs them
    if (by_class) add_per_class(j, *by_class, d.class_names);
    if (!by_target.empty()) add_per_target(j, by_target, d.target_names);
    outputs.attempt("--report", [&] { write_report(c.report, j); });
  }
  outputs.check();
  return 0;
}

int cli_main(int argc, char** argv) {
  Config c;
  CLI::App app{
      "cutrain-train: train a neural network with cutrain - on Fashion-MNIST (IDX files), CSV or\n"
      "NumPy data - then evaluate, export and predict.\n"
      "  cutrain-train                        the main job: the default MLP on Fashion-MNIST\n"
      "  cutrain-train --model cnn            a CNN on Fashion-MNIST (93%)\n"
      "  cutrain-train --train-csv a.csv --test-csv b.csv --target label   your own table\n"
      "  cutrain-train --model-from m.safetensors --predict-csv new.csv --predictions p.csv\n"
      "The loss is mean softmax cross-entropy (mean squared error with --regression); the last\n"
      "partial batch is kept unless --drop-last. --model mlp is Linear -> [BatchNorm1d] ->\n"
      "activation -> [Dropout] per hidden size, then Linear(.., classes or 1), named\n"
      "layers.{i}.weight/bias as torch.nn.Sequential numbers them. Guides: docs/command-line.md.",
      "cutrain-train"};
  add_options(app, c);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cutrain-train: error: %s\n", e.what());
    return 2;
  }
  for (const CLI::Option* o : app.get_options())
    if (o->count() > 0) c.given.insert(o->get_name());
  // Note [the default CNN]: 5 epochs of OneCycleLR peaking at 5e-3 unless told (an MLP's
  // default: 30 epochs of cosine decay from 1e-3).
  if (c.model == "cnn") {
    if (c.given.count("--epochs") == 0) c.epochs = 5;
    if (c.given.count("--schedule") == 0) c.schedule = "onecycle";
    if (c.given.count("--lr") == 0) c.lr = 5e-3F;
  }
  // Note [16-bit values in fp32 storage]: fp16 trains with dynamic loss scaling unless told not
  // to (its gradients underflow below 2^-24), as torch.cuda.amp pairs float16 with GradScaler.
  if (c.precision == "fp16" && c.given.count("--loss-scale") == 0) c.loss_scale = "dynamic";
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  try {
    const bool fresh = tools::resolve_resume_auto(c);
    return run(c, command_line, fresh);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "cutrain-train: error: %s\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "cutrain-train: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

// Note [OpenMP spin]: libgomp's threads spin ~300k iterations at every barrier before they sleep.
// On an idle machine that is fastest; on a busy one a descheduled thread makes the others spin
// out whole time slices at every one of a step's ~30 parallel regions (ours and OpenBLAS's).
// Measured on the 2-core CI machine, main job on a 10k subset with two busy processes beside
// it: 617-789 samples/s by default, 15-16k with GOMP_SPINCOUNT=1000; idle, full epochs:
// 1.78-2.57 s by default vs 1.89-2.19 s, inside this machine's run-to-run noise. libgomp reads
// the variable when it loads, before main, so the tool sets it and re-executes itself once; a
// value the user set (or OMP_WAIT_POLICY) is left alone.
static void tame_openmp_spinning(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (::setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

int main(int argc, char** argv) {
  tame_openmp_spinning(argv);
  // Note [writing to pipes]: the log's reader may leave (`cutrain-train | head`); a run that has
  // trained for hours does not die of SIGPIPE on its next line - the log is lost, the outputs are
  // still written. (The library's own writes hold the signal themselves.)
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return cli_main(argc, argv);
  } catch (const std::exception& e) {  // out of memory, a filesystem error: still one line
    std::fprintf(stderr, "cutrain-train: error: %s\n", e.what());
    return 1;
  }
}
