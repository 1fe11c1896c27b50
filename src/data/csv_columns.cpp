// Columns that are not what they seem (csv_columns.hpp).
#include "src/data/csv_columns.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "cutrain/error.hpp"
#include "src/data/csv_numbers.hpp"

namespace cutrain::data::detail {
namespace {

// The cut(1) command that leaves out column c (0-based) of `columns`.
std::string cut_without(std::size_t c, std::size_t columns, char separator) {
  const auto span = [](std::size_t from, std::size_t to) {  // 1-based fields, to 0: open
    return to == from ? std::to_string(from)
                      : std::to_string(from) + "-" + (to == 0 ? "" : std::to_string(to));
  };
  const std::string fields = c == 0             ? span(2, 0)
                             : c + 1 == columns ? span(1, c)
                                                : span(1, c) + "," + span(c + 2, 0);
  const std::string d = separator == '\t' ? "" : std::string("-d'") + separator + "' ";
  return "cut " + d + "-f" + fields + " FILE";
}

}  // namespace

void check_index_columns(CsvRecords& records, const std::vector<std::string>& header,
                         std::size_t first, const std::string& name, const CsvOptions& o) {
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (!header[c].empty() && !header[c].starts_with("Unnamed: ")) continue;
    bool numbered = records.size() >= first + 2;
    float base = 0;
    for (std::size_t l = first; l < records.size() && numbered; ++l) {
      const std::vector<std::string_view> cells = records.cells(l);
      float v = 0;
      numbered = c < cells.size() && parse_float(cells[c], v, o.decimal);
      if (numbered && l == first) base = v;
      numbered = numbered && (base == 0 || base == 1) && v == base + static_cast<float>(l - first);
    }
    CUTRAIN_CHECK(!numbered, name, ": column ", c + 1, " (",
                  header[c].empty() ? std::string("no name") : "'" + header[c] + "'",
                  ") numbers the rows ", base == 0 ? "0, 1, 2" : "1, 2, 3",
                  ", ...: the index pandas' DataFrame.to_csv writes unless index=False (R's "
                  "write.csv: row.names = FALSE). A row number is no feature: write the file "
                  "without it, or ",
                  header[c].empty()
                      ? "cut it (" + cut_without(c, header.size(), o.separator) +
                            " for a file without quoted separators)"
                      : "leave it out (CsvOptions::drop_columns; cutrain-train --drop-columns '" +
                            header[c] + "')");
  }
}

// Note [a label column left a feature] (readers.hpp, CsvOptions::label_chosen).
void check_default_label(const std::vector<std::string_view>& header,
                         const std::vector<long>& place, std::size_t label,
                         const std::string& name) {
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (place[c] != -1) continue;  // the label, or a dropped column
    std::string lower(header[c]);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    const bool named = lower == "label" || lower == "labels" || lower == "target" ||
                       lower == "class" || lower == "y";
    CUTRAIN_CHECK(c == label || !named, name, ": its column '", shown(header[c]), "' (column ",
                  c + 1, ") would be a feature, the label being the last column ('",
                  shown(header[label]),
                  "') as none was chosen: name the label column (CsvOptions::label_name; "
                  "cutrain-train --target '",
                  shown(header[c]), "', or --target -1 for the last column)");
  }
}

}  // namespace cutrain::data::detail
