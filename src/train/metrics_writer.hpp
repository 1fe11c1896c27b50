#pragma once
// The trainer's per-epoch metrics file: CSV (a header, then one line per epoch) or JSON lines
// (.jsonl / .json), each line written when its epoch ends so a killed run keeps what it reported.
// A resumed run appends to an existing file (Note [metrics of a resumed run]). A named pipe is
// waited on for its reader, briefly (Note [writing to pipes], src/io/descriptor.cpp).

#include <cstdint>
#include <string>

#include "cutrain/train/trainer.hpp"
#include "src/io/descriptor.hpp"

namespace cutrain::train::detail {

class MetricsWriter {
 public:
  // Empty path: writes nothing. resumed_epochs: 0 starts the file afresh; more continues it after
  // that many epochs. Throws cutrain::Error for another extension or an unwritable path.
  MetricsWriter(const std::string& path, std::int64_t resumed_epochs);
  // Throws cutrain::Error when the line could not be written (a full disk, a reader gone).
  void write(const EpochMetrics& m);

 private:
  bool jsonl_ = false;
  io::StreamFile out_;
};

}  // namespace cutrain::train::detail
