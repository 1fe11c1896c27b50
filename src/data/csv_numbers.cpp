// Numbers in CSV cells (csv_numbers.hpp).
#include "src/data/csv_numbers.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <string>

#include "cutrain/error.hpp"
#include "src/data/csv_records.hpp"
#include "src/data/narrow.hpp"

namespace cutrain::data::detail {

// A whole cell as a number, "nan" and "inf" included. Beyond float's range (from_chars reports
// overflow and underflow alike), the value is read as a double and narrowed: 1e-50 is 0, 1e39
// infinite. With a decimal comma (Note [CSV separators]) the cell's ',' is read as the point and
// a '.' makes it no number.
bool parse_number(std::string_view cell, float& out, char decimal) {
  if (!cell.empty() && cell.front() == '+') cell.remove_prefix(1);
  if (cell.empty()) return false;
  std::string pointed;
  if (decimal != '.' && cell.find_first_of(".,") != std::string_view::npos) {
    if (cell.find('.') != std::string_view::npos) return false;
    pointed.assign(cell);
    std::replace(pointed.begin(), pointed.end(), decimal, '.');
    cell = pointed;
  }
  const char* const last = cell.data() + cell.size();
  std::from_chars_result r = std::from_chars(cell.data(), last, out);
  if (r.ec == std::errc::result_out_of_range) {
    double wide = 0;
    r = std::from_chars(cell.data(), last, wide);
    out = narrow_to_float(wide);
  }
  return r.ec == std::errc() && r.ptr == last;
}

bool parse_float(std::string_view cell, float& out, char decimal) {  // a finite number
  return parse_number(cell, out, decimal) && std::isfinite(out);
}

// Why a numeric cell did not read as one, when the decimal separator may be why.
std::string decimal_hint(std::string_view cell, char decimal) {
  if (decimal != '.' && cell.find('.') != std::string_view::npos)
    return " (the decimal separator is '" + std::string(1, decimal) +
           "': CsvOptions::decimal, cutrain-train --csv-decimal)";
  float v = 0;
  if (decimal == '.' && cell.find(',') != std::string_view::npos && parse_number(cell, v, ','))
    return " (a decimal comma? CsvOptions::decimal = ',', cutrain-train --csv-decimal ,)";
  return "";
}

// The separators and decimal marks parse_csv takes (Note [CSV separators]).
void check_format(const CsvOptions& o, const std::string& name) {
  const std::string_view separators = ",;\t|";
  CUTRAIN_CHECK(o.separator != '\0' && separators.find(o.separator) != std::string_view::npos, name,
                ": separator '", shown(std::string_view(&o.separator, 1)), "'",
                " is not one of ',', ';', tab and '|'");
  CUTRAIN_CHECK(o.decimal == '.' || o.decimal == ',', name, ": decimal separator '",
                shown(std::string_view(&o.decimal, 1)), "' is not '.' or ','");
  CUTRAIN_CHECK(o.decimal != o.separator, name,
                ": the decimal separator ',' needs another cell separator (';' is Excel's)");
}

// A numeric feature cell that holds no value: empty, or a marker pandas' read_csv also takes for
// missing (and UCI's "?"). Only feature columns are read this way: "NA" is a fine class name.
bool missing(std::string_view cell) {
  static constexpr std::string_view kMarkers[] = {"",     "NA",   "N/A",  "n/a",  "NaN", "nan",
                                                  "-nan", "-NaN", "null", "NULL", "?"};
  return std::find(std::begin(kMarkers), std::end(kMarkers), cell) != std::end(kMarkers);
}

}  // namespace cutrain::data::detail
