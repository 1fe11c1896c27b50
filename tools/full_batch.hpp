#pragma once
// cutrain-train with a second-order optimizer (--optimizer lbfgs|newton-cg): the whole training
// set at once, a closure recomputing the loss (cross-entropy, or MSE for regression) and the
// gradients, --epochs outer steps of up to 20 inner iterations each, in eval mode (no dropout),
// then the test set, --save, --export-torch and --report.

#include <string>

#include "cutrain/cutrain.hpp"
#include "tools/train_data.hpp"
#include "tools/train_options.hpp"

namespace cutrain::tools {

int run_full_batch(const Config& c, nn::Sequential& model, const TrainData& d, Device device,
                   const std::string& command_line);

}  // namespace cutrain::tools
