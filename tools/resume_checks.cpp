// Note [validation split on resume] (tools/resume_checks.hpp).
#include "tools/resume_checks.hpp"

#include <map>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/train/checkpoint.hpp"

namespace cutrain::tools {

std::string validation_split(const Config& c) {
  if (c.val_fraction <= 0) return "";
  std::string flags = "--val-fraction " + CLI::detail::to_string(c.val_fraction) + " --seed " +
                      std::to_string(c.seed);
  if (c.stratify) flags += " --stratify";
  if (c.train_subset > 0) flags += " --train-subset " + std::to_string(c.train_subset);
  return flags;
}

void check_resume_split(const Config& c) {
  if (c.resume.empty()) return;
  std::map<std::string, std::string> meta;
  try {
    meta = train::read_metadata(c.resume);
  } catch (const Error&) {
    return;  // not a checkpoint: Trainer::resume says what it is
  }
  const auto found = meta.find(kValidationSplitKey);
  const std::string now = validation_split(c);
  if (found == meta.end() || found->second == now) return;
  const std::string& was = found->second;
  throw UsageError(
      "--resume: the checkpoint " +
      (was.empty() ? std::string("held no validation rows out (no --val-fraction)")
                   : "held its validation rows out with " + was) +
      " and this run " + (now.empty() ? "holds none out" : "holds them out with " + now) +
      ": it would train on rows the first epochs validated on, or validate on rows they trained "
      "on; resume with " +
      (was.empty() ? "no --val-fraction" : was) + " (cutrain-train --describe " + c.resume +
      " shows the command it was trained with)");
}

}  // namespace cutrain::tools
