#pragma once
// What cutrain-train prints and writes at the end of a run (mini-batch or full-batch).

#include <nlohmann/json.hpp>

#include <string>

#include "cutrain/train/trainer.hpp"

namespace cutrain::tools {

// The test set's figures on stdout, without a newline: accuracy and cross-entropy, or for
// regression the MSE.
void print_test_result(const train::EvalResult& r, bool regression);

// NaN (regression's accuracy) as JSON null.
nlohmann::json json_number(double v);

// --report: the JSON written at the end (its path was checked before training, check_outputs);
// a failure here is the disk's, a std::runtime_error.
void write_report(const std::string& path, const nlohmann::json& j);

}  // namespace cutrain::tools
