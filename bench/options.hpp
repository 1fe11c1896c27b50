#pragma once
// The command line every bench shares, checked alike (cutrain-train's contract, docs/errors.md):
// a bad value exits 2 with one line naming the flag - not CLI11's own exit codes (105, 109), a
// NaN taken as a time, a batch of 0 failing deep in a layer, or --min-seconds 1e300 timing forever.

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace cutrain::bench {

/// A finite number in [lo, hi] (`wanted` says so in words); NaN and infinities refused
/// (CLI::Range lets NaN through).
inline CLI::Validator in_range(double lo, double hi, const std::string& wanted) {
  return CLI::Validator(
      [lo, hi, wanted](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
          return "must be " + wanted + " (got " + text + ")";
        return {};
      },
      wanted);
}
/// --min-seconds: at most a minute per measurement (0: the minimum count of runs).
inline CLI::Validator seconds() {
  return in_range(0, 60, "a number of seconds from 0 to 60");
}
/// Batch sizes and element counts: 1 to 2^30.
inline CLI::Validator count() {
  return in_range(1, 1073741824.0, "a count from 1 to 2^30");
}

/// One of `names` (a list option checks each value).
inline CLI::Validator one_of(const std::vector<std::string>& names) {
  std::string listed;
  for (const std::string& n : names) listed += (listed.empty() ? "" : ", ") + n;
  return CLI::Validator(
      [names, listed](std::string& text) -> std::string {
        for (const std::string& n : names)
          if (text == n) return {};
        return "must be one of " + listed + " (got " + text + ")";
      },
      "one of " + listed);
}

/// CLI11_PARSE's twin: 0 after --help, 2 with one line "NAME: error: ..." for a bad command line,
/// -1 to go on.
inline int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string name =
        std::filesystem::path(argc > 0 ? argv[0] : "bench").filename().string();
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
    return 2;
  }
  return -1;
}

}  // namespace cutrain::bench
