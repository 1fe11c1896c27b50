// Note [validation split on resume] (tools/resume_checks.hpp).
#include "tools/resume_checks.hpp"

#include <cstdio>
#include <map>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/train/checkpoint.hpp"

namespace cutrain::tools {

Metadata resume_metadata(const Config& c) {
  if (c.resume.empty()) return {};
  try {
    return train::read_metadata(c.resume);
  } catch (const Error&) {
    return {};  // not a checkpoint: Trainer::resume says what it is
  }
}

std::string validation_split(const Config& c) {
  if (c.val_fraction <= 0) return "";
  std::string flags = "--val-fraction " + CLI::detail::to_string(c.val_fraction) + " --seed " +
                      std::to_string(c.seed);
  if (c.stratify) flags += " --stratify";
  if (c.train_subset > 0) flags += " --train-subset " + std::to_string(c.train_subset);
  return flags;
}

void check_resume_split(const Config& c, const Metadata& meta) {
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

std::string schedule_span(const Config& c) {
  return c.schedule + " " + std::to_string(c.epochs);
}

void note_resume_schedule(const Config& c, const Metadata& meta) {
  if (c.schedule != "cosine" && c.schedule != "linear" && c.schedule != "onecycle") return;
  const auto found = meta.find(kScheduleSpanKey);
  const std::string now = schedule_span(c);
  if (found == meta.end() || found->second == now) return;
  const std::size_t space = found->second.find(' ');
  if (space == std::string::npos || found->second.substr(0, space) != c.schedule) return;
  const std::string was = found->second.substr(space + 1);
  std::printf(
      "note: --resume: the checkpoint's run spread its %s schedule over %s epochs and this run "
      "spreads it over %lld: training goes on with the %lld-epoch schedule's learning rate at the "
      "checkpoint's step, not where the %s-epoch run was, as if planned for %lld epochs from the "
      "start (--epochs %s keeps the checkpoint's schedule; another --schedule gives the rest of "
      "the run its own)\n",
      c.schedule.c_str(), was.c_str(), static_cast<long long>(c.epochs),
      static_cast<long long>(c.epochs), was.c_str(), static_cast<long long>(c.epochs), was.c_str());
}

std::string arithmetic(const std::string& device_description) {
  if (!device_description.starts_with("cuda:")) return device_description;
  const std::size_t space = device_description.find(' ');
  return space == std::string::npos ? device_description : device_description.substr(space + 1);
}

void note_resume_arithmetic(const Metadata& meta, const std::string& arithmetic_now) {
  const auto found = meta.find(kArithmeticKey);
  if (found == meta.end() || found->second == arithmetic_now) return;
  const bool both_cpu = found->second.starts_with("cpu (") && arithmetic_now.starts_with("cpu (");
  std::printf(
      "note: --resume: the checkpoint was trained on %s and this run computes on %s, where the "
      "GEMMs round their sums otherwise%s: the run continues from the checkpoint, but not bit for "
      "bit as the uninterrupted run would have%s\n",
      found->second.c_str(), arithmetic_now.c_str(),
      both_cpu ? " (OpenBLAS blocks them by its thread count)" : "",
      both_cpu ? " (set OMP_NUM_THREADS to the checkpoint's thread count to repeat them)" : "");
}

}  // namespace cutrain::tools
