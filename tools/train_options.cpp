// cutrain-train's flags (tools/train_options.hpp); the objects they configure are made in
// tools/make_model.cpp and tools/make_trainer.cpp.
#include "tools/train_options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <utility>

namespace cutrain::tools {
namespace {

// CLI11's PositiveNumber / NonNegativeNumber / Range word a refusal as "Value 0 not in range
// 0.000000 to 1797...(300 digits)", and let NaN through (every comparison with NaN is false, so
// `--dropout nan` trained with a NaN probability); these say what is wanted, and refuse NaN and
// inf.
CLI::Validator number_check(std::function<bool(double)> ok, const std::string& wanted) {
  return CLI::Validator(
      [ok = std::move(ok), wanted](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "'" + text + "' is not a number";
        if (!std::isfinite(v)) return "must be a finite number (got " + text + ")";
        return ok(v) ? std::string() : "must be " + wanted + " (got " + text + ")";
      },
      wanted, "NUMBER " + wanted);
}
const CLI::Validator kPositive = number_check([](double v) { return v > 0; }, "> 0");
const CLI::Validator kNonNegative = number_check([](double v) { return v >= 0; }, ">= 0");
// Integers: CLI11 read 99999999999999999999 as the largest int64 (a batch size, a patience)
// without a word; these refuse what the field cannot hold.
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
CLI::Validator integer_check(std::int64_t lo, std::int64_t hi, const std::string& wanted) {
  return CLI::Validator(
      [lo, hi, wanted](std::string& text) -> std::string {
        std::int64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (text.empty() || ptr != end || ec == std::errc::invalid_argument) {
          return "'" + text + "' is not an integer";
        }
        if (ec == std::errc::result_out_of_range && text[0] != '-' && hi == kInt64Max) {
          return "'" + text + "' is too large (at most 2^63 - 1)";
        }
        if (ec != std::errc() || v < lo || v > hi) {
          return "must be " + wanted + " (got " + text + ")";
        }
        return {};
      },
      wanted, "INTEGER " + wanted);
}
const CLI::Validator kPositiveInt = integer_check(1, kInt64Max, "> 0");
const CLI::Validator kNonNegativeInt = integer_check(0, kInt64Max, ">= 0");
// Counts that multiply into step counts (epochs x batches per epoch) stay far from int64's end.
const CLI::Validator kCount = integer_check(0, 1000000000, "between 0 and 10^9");
// One of `choices`, named as the help shows them (a tab as "tab"): CLI::IsMember listed them
// raw, a tab among them.
CLI::Validator one_of(const std::vector<std::string>& choices, const std::string& shown) {
  return CLI::Validator(
      [choices, shown](std::string& text) -> std::string {
        if (std::find(choices.begin(), choices.end(), text) != choices.end()) return {};
        return "'" + (text == "\t" ? std::string("tab") : text) + "' is not one of " + shown;
      },
      "{" + shown + "}");
}
CLI::Validator in_range(double lo, double hi) {
  return number_check(
      [lo, hi](double v) { return v >= lo && v <= hi; },
      "in [" + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]");
}
// The hyperparameters the optimizers and layers take are floats: a value the float cannot hold
// became inf (`--lr 1e308`) or 0 (`--eps 1e-320`), refused later naming the rule, not the flag.
const CLI::Validator kFloat(
    [](std::string& text) -> std::string {
      const double v = std::strtod(text.c_str(), nullptr);
      if (std::fabs(v) > std::numeric_limits<float>::max()) {
        return "'" + text + "' is too large for a float (at most 3.4e38)";
      }
      if (v != 0 && static_cast<float>(v) == 0.0F) {
        return "'" + text + "' is too small for a float (it would be 0)";
      }
      return {};
    },
    "");
// A seed is an unsigned 64-bit integer: CLI11 read "-1" as 2^64 - 1 and 2^64 as something.
const CLI::Validator kSeed(
    [](std::string& text) -> std::string {
      std::uint64_t v = 0;
      const char* end = text.data() + text.size();
      const auto [ptr, ec] = std::from_chars(text.data(), end, v);
      const bool ok = !text.empty() && ec == std::errc() && ptr == end;
      return ok ? std::string() : "must be an integer in [0, 2^64 - 1] (got " + text + ")";
    },
    "UINT");

}  // namespace

void add_options(CLI::App& app, Config& c) {
  app.get_formatter()->column_width(34);
  app.option_defaults()->group("Data");
  app.add_option("--data", c.data, "directory with {train,t10k}-{images,labels}-idx*-ubyte[.gz]")
      ->capture_default_str();
  app.add_option("--train-csv", c.train_csv,
                 "training data as CSV instead of --data: numbers, one sample per line, an "
                 "optional header; the target column chosen by --target");
  app.add_option("--test-csv", c.test_csv, "test data as CSV, the columns of --train-csv");
  app.add_option("--train-npy", c.train_npy,
                 "training data as NumPy arrays instead of --data: X.npy,Y.npy (numpy.save; "
                 "X of shape (N, ...), each sample's elements its features; Y the class labels, "
                 "or with --regression float targets (N) or (N, T); .npy.gz too)");
  app.add_option("--test-npy", c.test_npy, "test data as X.npy,Y.npy, the shapes of --train-npy");
  app.add_option("--val-npy", c.val_npy,
                 "validation data as X.npy,Y.npy (instead of --val-fraction)");
  app.add_option("--val-csv", c.val_csv,
                 "validation data as CSV, the columns of --train-csv (instead of --val-fraction)");
  app.add_option("--target", c.target,
                 "CSV target column: a header name, or an index (negative: from the end); with "
                 "--regression several names separated by commas (one output each)")
      ->capture_default_str();
  app.add_option("--categorical", c.categorical,
                 "CSV feature columns holding categories (text, or numbers meant as labels), by "
                 "header name, comma-separated: each is one-hot encoded, one 0/1 feature per "
                 "category of the training file (a category the test data adds is an error)");
  app.add_option("--drop-columns", c.drop_columns,
                 "CSV columns to leave out, by header name, comma-separated: identifiers, free "
                 "text (neither features nor the target); a file to predict may lack them")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const bool empty_name = text.empty() || text.front() == ',' || text.back() == ',' ||
                                    text.find(",,") != std::string::npos;
            return empty_name ? "'" + text + "' names an empty column: give header names" : "";
          },
          "NAMES"));
  app.add_option("--id-column", c.id_column,
                 "CSV column identifying each row (Kaggle's PassengerId), by header name: left "
                 "out of the features like --drop-columns, and written first in --predictions "
                 "beside each row's prediction; exports record it")
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            return text.empty() ? "give the header name of the column of row ids" : "";
          },
          "NAME"));
  app.add_option("--impute", c.impute,
                 "fill missing CSV feature values (empty, NA, N/A, NaN, null, ?) with the "
                 "training split's per-feature mean or median (scikit-learn's SimpleImputer); "
                 "without it a missing value is an error")
      ->check(CLI::IsMember({"mean", "median"}));
  app.add_option("--csv-separator", c.csv_separator,
                 "what separates the cells of every CSV file: ',', ';' (Excel's where the "
                 "decimal mark is a comma), tab (a TSV) or '|'; quoting works alike with each")
      ->check(one_of({",", ";", "tab", "\t", "|"}, "',', ';', tab, '|'"))
      ->capture_default_str();
  app.add_option("--csv-decimal", c.csv_decimal,
                 "the decimal separator of the CSV files' numbers: '.' or ',' (with "
                 "--csv-separator ';', tab or '|'); with ',' a number holding '.' is an error")
      ->check(one_of({".", ","}, "'.', ','"))
      ->capture_default_str();
  app.add_option("--csv-header", c.csv_header,
                 "whether the first row of every CSV file names its columns: auto (a row of text "
                 "above numbers, or pandas' 0,1,2,... names), yes or no")
      ->check(one_of({"auto", "yes", "no"}, "auto, yes, no"))
      ->capture_default_str();
  app.add_option("--max-classes", c.max_classes,
                 "the most classes the labels may number (a label of 100000 in a small file is a "
                 "typo, not 100001 classes); raise it for data with more")
      ->check(kPositiveInt)
      ->capture_default_str();
  app.add_flag("--regression", c.regression,
               "the CSV target is a float: train with mean squared error, one output (default: "
               "integer class labels, softmax cross-entropy)");
  app.option_defaults()->group("Model");
  app.add_option("--model", c.model,
                 "mlp: fully connected layers (--hidden); cnn: convolutional blocks (--channels: "
                 "per block two 3x3 Conv2d + BatchNorm2d + activation, then 2x2 max pooling) "
                 "before a fully connected classifier (--hidden, default 128)")
      ->check(CLI::IsMember({"mlp", "cnn"}))
      ->capture_default_str();
  app.add_option("--hidden", c.hidden,
                 "hidden layer sizes, comma-separated (with --model cnn: the classifier's, "
                 "default 128); '' for none: a linear model (softmax regression)")
      ->capture_default_str();
  app.add_option("--channels", c.channels, "--model cnn: each block's channels, comma-separated")
      ->capture_default_str();
  app.add_option("--residual-blocks", c.residual_blocks,
                 "--model cnn: residual blocks after each block's pooling, each x + [3x3 Conv2d, "
                 "BatchNorm2d, activation] x 2 at the block's channels (ResNet-9's)")
      ->check(integer_check(0, 16, "in [0, 16]"))
      ->capture_default_str();
  app.add_option("--input-shape", c.input_shape,
                 "--model cnn, --augment-*: C,H,W of a sample's features (default 1,28,28 for 784 "
                 "features)");
  app.add_option("--activation", c.activation,
                 "relu|leaky_relu|tanh|sigmoid|gelu|silu|relu6|hardswish|elu (torch's defaults)")
      ->check(CLI::IsMember(
          {"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "relu6", "hardswish", "elu"}))
      ->capture_default_str();
  app.add_flag("--batchnorm", c.batchnorm, "BatchNorm1d after each hidden Linear");
  app.add_option("--dropout", c.dropout, "dropout probability after each activation")
      ->check(in_range(0.0, 0.99))
      ->capture_default_str();
  app.add_option("--init", c.init,
                 "xavier-uniform|xavier-normal|he-uniform|he-normal "
                 "(default: He for ReLU-family, Xavier for tanh/sigmoid)")
      ->check(CLI::IsMember({"xavier-uniform", "xavier-normal", "he-uniform", "he-normal"}));
  app.option_defaults()->group("Optimizer");
  app.add_option("--optimizer", c.optimizer,
                 "sgd|adagrad|rmsprop|adam|adamw, or full-batch lbfgs|newton-cg (then --epochs "
                 "counts outer steps, dropout is off, the mini-batch flags and models with "
                 "BatchNorm are refused; use --train-subset for large data)")
      ->check(CLI::IsMember({"sgd", "adagrad", "rmsprop", "adam", "adamw", "lbfgs", "newton-cg"}))
      ->capture_default_str();
  app.add_option("--lr", c.lr, "learning rate (with --model cnn the default is 0.005)")
      ->check(kNonNegative)
      ->check(kFloat)
      ->capture_default_str();
  app.add_option("--momentum", c.momentum, "SGD / RMSProp momentum")
      ->check(kNonNegative)
      ->check(kFloat);
  app.add_flag("--nesterov", c.nesterov, "Nesterov momentum (SGD, RMSProp)");
  app.add_option("--dampening", c.dampening, "SGD dampening")->check(in_range(0.0, 1.0));
  app.add_option("--alpha", c.alpha, "RMSProp smoothing constant")->check(in_range(0.0, 0.999999));
  app.add_flag("--centered", c.centered, "centered RMSProp");
  app.add_option("--beta1", c.beta1, "Adam beta1")->check(in_range(0.0, 0.999999));
  app.add_option("--beta2", c.beta2, "Adam beta2")->check(in_range(0.0, 0.999999));
  app.add_option("--eps", c.eps, "epsilon")->check(kPositive)->check(kFloat);
  app.add_option("--weight-decay", c.weight_decay,
                 "weight decay (L2 for Adam/SGD/..., "
                 "decoupled for AdamW); never applied to biases and BatchNorm")
      ->check(kNonNegative)
      ->check(kFloat)
      ->capture_default_str();
  app.add_flag("--amsgrad", c.amsgrad, "AMSGrad variant of Adam/AdamW");
  app.option_defaults()->group("Learning-rate schedule");
  app.add_option("--schedule", c.schedule,
                 "constant|step|exponential|linear|cosine|onecycle|plateau (per iteration; "
                 "onecycle: OneCycleLR rising from --lr/25 to --lr, then annealing to --lr/25e4; "
                 "plateau: ReduceLROnPlateau, lr x --gamma after more than --plateau-patience "
                 "epochs without a lower validation loss (training loss without validation "
                 "data), down to --min-lr; with --model cnn the default is onecycle)")
      ->check(CLI::IsMember(
          {"constant", "step", "exponential", "linear", "cosine", "onecycle", "plateau"}))
      ->capture_default_str();
  app.add_option("--step-size", c.step_size, "step schedule: epochs between decays")
      ->check(kPositive);
  app.add_option("--gamma", c.gamma, "step/exponential: decay factor per step/epoch")
      ->check(kPositive);
  app.add_option("--min-lr", c.min_lr, "linear/cosine: final learning rate")->check(kNonNegative);
  app.add_option("--plateau-patience", c.plateau_patience,
                 "plateau: epochs without improvement before the learning rate is cut")
      ->check(kNonNegativeInt);
  app.add_option("--pct-start", c.pct_start,
                 "onecycle: the fraction of the steps spent rising to --lr")
      ->check(in_range(0.01, 0.99));
  app.add_option("--warmup", c.warmup, "linear warmup iterations")->check(kNonNegativeInt);
  app.option_defaults()->group("Training");
  app.add_option("--clip-norm", c.clip_norm, "clip the global gradient L2 norm (0: off)")
      ->check(kNonNegative)
      ->check(kFloat);
  app.add_option("--label-smoothing", c.label_smoothing, "label smoothing")
      ->check(in_range(0.0, 1.0));
  app.add_option("--class-weights", c.class_weights,
                 "weigh each class's samples in the cross-entropy (rare classes up): 'balanced' "
                 "(rows / (classes x the class's rows), from the training split), one weight "
                 "per class in label order, comma-separated, or name=weight pairs (Shirt=2; the "
                 "rest 1); the losses reported are weighted");
  app.add_option("--ema", c.ema,
                 "keep an exponential moving average of the weights with this decay (e.g. "
                 "0.999): validation, --target-accuracy, the final test and --export-torch use "
                 "the averaged weights")
      ->check(in_range(0.0, 0.999999));
  app.add_option("--augment-shift", c.augment_shift,
                 "augment each training batch on its device: translate every image by up to "
                 "this many pixels each way, zero-filled (torchvision's RandomCrop(H, "
                 "padding=N)); images of --input-shape (default 1,28,28 for 784 features)")
      ->check(integer_check(0, std::numeric_limits<std::int32_t>::max(), "in [0, 2^31 - 1]"));
  app.add_flag("--augment-flip", c.augment_flip,
               "augment each training batch on its device: mirror every image left-right with "
               "probability 1/2 (RandomHorizontalFlip)");
  app.add_flag("--eval-flip", c.eval_flip,
               "test-time flips: validation, the test evaluation and --predictions average each "
               "image's outputs with its mirror image's (for a model trained with "
               "--augment-flip); images of --input-shape");
  app.add_option("--batch-size", c.batch_size, "batch size")
      ->check(kPositiveInt)
      ->capture_default_str();
  app.add_option("--accumulate", c.accumulate,
                 "gradient accumulation: this many batches per optimizer step, whose gradient is "
                 "the mean over all their samples (checkpoints, --checkpoint-every and the "
                 "schedule count steps)")
      ->check(kPositiveInt);
  app.add_flag("--drop-last", c.drop_last,
               "drop each epoch's last partial batch (torch DataLoader's drop_last); a last "
               "batch of one row cannot train BatchNorm");
  app.add_option("--epochs", c.epochs,
                 "total epochs (a resumed run continues up to this; with --model cnn the "
                 "default is 5)")
      ->check(kCount)
      ->capture_default_str();
  app.add_option("--monitor", c.monitor,
                 "what --patience watches and restores the best epoch by: val_loss (lower is "
                 "better) or val_accuracy (higher)")
      ->check(CLI::IsMember({"val_loss", "val_accuracy"}))
      ->capture_default_str();
  app.add_option("--patience", c.patience,
                 "early stopping on the validation loss (or --monitor) (0: off)")
      ->check(kNonNegativeInt);
  app.add_option("--val-fraction", c.val_fraction, "hold out this fraction of train for validation")
      ->check(in_range(0.0, 0.99));
  app.add_flag("--stratify", c.stratify,
               "--val-fraction (or --folds) holds out each class in its share of the training "
               "data (for rare classes; scikit-learn's stratify=y)");
  app.add_option(
         "--folds", c.folds,
         "k-fold cross-validation instead of a training run: K models, each trained on "
         "K - 1 folds of the training data and scored on the last (preprocessing fitted "
         "on its training part); prints each fold's and the mean validation loss and "
         "accuracy (--predictions: each training row's out-of-fold prediction); the test set "
         "is not used, no model is kept")
      ->check(integer_check(2, kInt64Max, ">= 2"));
  app.add_option("--train-subset", c.train_subset, "use only the first N training samples")
      ->check(kNonNegativeInt);
  app.add_option("--seed", c.seed, "seed of initialization, shuffling, dropout and splits")
      ->check(kSeed);
  app.add_flag("--no-shuffle", c.no_shuffle, "visit training samples in file order");
  app.add_flag("--standardize", c.standardize, "per-feature standardization instead of /255 only");
  app.add_option("--device", c.device, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--precision", c.precision,
                 "fp32: strict fp32; tf32: the GEMMs and convolutions on TF32 tensor cores (a "
                 "GPU of compute capability 8.0 or newer; fp32 storage and optimizer), as "
                 "PyTorch's allow_tf32; bf16 / fp16: parameters as the layers read them, "
                 "activations and their gradients rounded to 16 bits, fp32 master weights and "
                 "optimizer (GPU: 16-bit tensor-core GEMMs); fp16 with --loss-scale dynamic "
                 "unless --loss-scale off is given")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}))
      ->capture_default_str();
  app.add_option("--loss-scale", c.loss_scale,
                 "dynamic: scale the loss by S and unscale the gradients in the step, skipping "
                 "steps whose scaled gradients overflow (S x 0.5) and doubling S after 2000 clean "
                 "steps - torch.cuda.amp.GradScaler's rules, S from 2^16; without overflow the "
                 "run is the unscaled run, bit for bit")
      ->check(CLI::IsMember({"off", "dynamic"}))
      ->capture_default_str();
  app.add_option("--rounding", c.rounding,
                 "how the fp32 master weights are rounded to the 16-bit values the layers read "
                 "in training (with --precision bf16 / fp16): nearest (even), or stochastic - "
                 "unbiased, its random bits a hash of the seed, the step and the parameter's "
                 "index, drawn in the optimizer's fused step")
      ->check(CLI::IsMember({"nearest", "stochastic"}))
      ->capture_default_str();
  app.option_defaults()->group("Files");
  app.add_option("--metrics", c.metrics, "per-epoch metrics, FILE.csv or FILE.jsonl");
  app.add_option("--save", c.save, "checkpoint after every epoch (safetensors)");
  app.add_option("--resume", c.resume,
                 "continue from a checkpoint up to --epochs; auto: from the --save file when it "
                 "exists, else from the start (one command for a job that is restarted)");
  app.add_flag("--overwrite", c.overwrite,
               "let --save replace a checkpoint or model export already there, and another "
               "output a checkpoint (refused otherwise, unless it is the --resume file: another "
               "run's training is not overwritten by mistake)");
  app.add_option("--checkpoint-every", c.checkpoint_every,
                 "with --save: also checkpoint every this many steps, mid-epoch (a resume "
                 "continues at the next batch). Ctrl-C (SIGINT), SIGTERM or a hangup (SIGHUP, "
                 "unless under nohup) saves where the run is and exits 130 / 143 / 129")
      ->check(kNonNegativeInt);
  app.add_option("--init-from", c.init_from, "initial weights (layers.{i}.weight [out, in], ...)");
  app.add_option("--model-from", c.model_from,
                 "the model's layers and weights from a file that lists its modules (an "
                 "--export-torch file, a checkpoint, or tools/cutrain_torch.py save_model of a "
                 "torch.nn.Sequential), instead of --hidden, --activation, --batchnorm, "
                 "--dropout and --init");
  app.add_option("--describe", c.describe,
                 "print what a model file (an export or a checkpoint) holds - its layers, the "
                 "data preparation and classes it expects, how far it was trained - and exit");
  app.add_option("--export-torch", c.export_torch, "write torch.nn.Sequential-named weights");
  app.add_option("--export-dtype", c.export_dtype,
                 "--export-torch's weights as fp32, or bf16 (rounded to nearest even: what "
                 "model.to(torch.bfloat16) holds, half the file; --model-from and --init-from "
                 "read it back)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--init-optimizer-from", c.init_optimizer_from,
                 "initial optimizer state from torch.optim (tools/cutrain_torch.py "
                 "save_optimizer_state; same optimizer and configuration), with --init-from to "
                 "continue a PyTorch run");
  app.add_option("--export-torch-optimizer", c.export_torch_optimizer,
                 "write the optimizer state for torch.optim (tools/cutrain_torch.py "
                 "load_optimizer_state), beside --export-torch's weights");
  app.add_option("--export-onnx", c.export_onnx,
                 "write the model as ONNX (opset 17: ONNX Runtime, TensorRT, OpenVINO), the data "
                 "preparation (fills, scale, standardization) as its first nodes, so raw feature "
                 "rows go in; also with --model-from FILE alone, to convert an export");
  app.add_flag("--onnx-softmax", c.onnx_softmax,
               "--export-onnx: output class probabilities (Softmax) instead of logits");
  app.add_flag("--onnx-no-prep", c.onnx_no_prep,
               "--export-onnx: leave the data preparation out of the graph (its input is the "
               "prepared features)");
  app.add_option("--report", c.report, "JSON report of the run");
  app.add_option("--predict-csv", c.predict_csv,
                 "with --predictions: predict this CSV file's rows instead of the test set's - "
                 "features only, the training file's feature columns in its order (new data; "
                 "--standardize applies the training statistics to it)");
  app.add_option("--predict-npy", c.predict_npy,
                 "with --predictions: predict this array's samples (X.npy, features only) "
                 "instead of the test set's");
  app.add_option("--predictions", c.predictions,
                 "write the test set's predictions as CSV, a row per sample in file order: the "
                 "predicted class and each class's probability, or with --regression the "
                 "predicted value");
  app.option_defaults()->group("Speed and measurement");
  app.add_flag("--resident-data", c.resident_data,
               "keep the training set on the device and gather each batch there, instead of "
               "streaming batches from pinned host memory (for data sets that fit beside the "
               "model; the same batches either way)");
  app.add_option("--cuda-graph", c.cuda_graph,
                 "auto: on a GPU, replay each full batch's training step from one captured CUDA "
                 "graph (the same results as eager steps, one launch each) whenever the run "
                 "allows it, and say why not otherwise; on: require it (exit 2 naming what "
                 "prevents it); off: launch every operation eagerly")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--bucket-mb", c.bucket_mb,
                 "under mpirun: all-reduce gradients in buckets of this many MiB while backward "
                 "runs (0: one all-reduce after backward)")
      ->check(in_range(0.0, 1024.0));
  app.add_flag("--sync-batchnorm", c.sync_batchnorm,
               "under mpirun: every BatchNorm normalizes with the statistics of the whole "
               "global batch, summed over the ranks (torch.nn.SyncBatchNorm), so that W ranks "
               "train as one process with their combined batch; default: each rank's own rows");
  app.add_option("--target-accuracy", c.target_accuracy,
                 "evaluate the test set after each epoch and report the training time until "
                 "it first reaches this accuracy (time to accuracy)")
      ->check(in_range(0.0, 1.0));
  app.option_defaults()->group("Learning-rate range test");
  app.add_flag("--find-lr", c.find_lr,
               "instead of training: raise the lr geometrically from --find-lr-min to "
               "--find-lr-max over --find-lr-steps batches (the optimizer, batch size and "
               "clipping as configured), print the smoothed loss curve and the lr where it falls "
               "fastest, restore the model, and exit (Smith's LR range test; fastai's lr_find)");
  app.add_option("--find-lr-steps", c.find_lr_steps, "batches in the sweep at most")
      ->check(integer_check(2, 1000000, "in [2, 10^6]"));
  app.add_option("--find-lr-min", c.find_lr_min, "the sweep's first lr")->check(kPositive);
  app.add_option("--find-lr-max", c.find_lr_max, "the sweep's last lr")->check(kPositive);
}

io::DType export_dtype(const Config& c) {
  return c.export_dtype == "bf16" ? io::DType::kBf16 : io::DType::kF32;
}

}  // namespace cutrain::tools
