#pragma once
// Note [numbers in files]: the numbers cutrain writes into files and reads back - checkpoint
// metadata, the schedule's saved state, the loss options a resume compares, the metrics CSV -
// go through std::to_chars / std::from_chars, which ignore the process's locale. printf's %g
// and strtod follow LC_NUMERIC: an application that calls setlocale(LC_ALL, "") in a German
// locale (Qt does, on start) wrote "0,5" into the metrics CSV - a column more on every line -
// and checkpoints whose plateau schedule no resume could read back.

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace cutrain::detail {

/// `v` as printf's "%.<precision>g" writes it in the "C" locale ("inf", "nan" and "-nan" too).
inline std::string format_g(double v, int precision) {
  char text[64];
  const std::to_chars_result r =
      std::to_chars(text, text + sizeof text, v, std::chars_format::general, precision);
  return {text, r.ptr};
}

/// The whole of `text` as a double in the "C" locale's notation, or nullopt.
inline std::optional<double> parse_double(std::string_view text) {
  double v = 0;
  const char* const last = text.data() + text.size();
  const std::from_chars_result r = std::from_chars(text.data(), last, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != last) return std::nullopt;
  return v;
}

}  // namespace cutrain::detail
