#pragma once
// The trainer's per-epoch metrics file: CSV (a header, then one line per epoch) or JSON lines
// (.jsonl / .json), flushed after every epoch so a killed run keeps what it reported. A resumed
// run appends to an existing file.

#include <fstream>
#include <string>

#include "cutrain/train/trainer.hpp"

namespace cutrain::train::detail {

class MetricsWriter {
 public:
  // Empty path: writes nothing. Throws cutrain::Error for another extension or an unwritable path.
  MetricsWriter(const std::string& path, bool append);
  // Throws cutrain::Error when the line could not be written (a full disk).
  void write(const EpochMetrics& m);

 private:
  std::string path_;
  bool jsonl_ = false;
  std::ofstream out_;
};

}  // namespace cutrain::train::detail
