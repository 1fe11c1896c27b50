// tools/run_report.hpp.
#include "tools/run_report.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace cutrain::tools {

void print_test_result(const train::EvalResult& r, bool regression) {
  if (regression)
    std::printf("test MSE %.6g", r.loss);
  else
    std::printf("test accuracy %.4f  test loss %.4f", r.accuracy, r.loss);
}

nlohmann::json json_number(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

void write_report(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  // Checked up front (check_outputs): failing here is the disk, not the arguments.
  if (!out) throw std::runtime_error("--report: writing '" + path + "' failed");
}

}  // namespace cutrain::tools
