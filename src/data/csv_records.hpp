#pragma once
// A CSV file's text as records and cells (Note [CSV quoting]); src/data/csv_reader.cpp gives
// them meaning.

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace cutrain::data::detail {

// Note [CSV quoting]: cells follow RFC 4180 as spreadsheets, pandas and R's write.csv (which
// quotes every name and text cell) write them - separated by commas, or by the separator given
// (Note [CSV separators], cutrain/data/readers.hpp), which then takes the comma's place below. A
// cell whose first non-blank character is '"' is quoted: it ends at the next lone '"', may hold
// commas, line breaks and '""' for a quote, and keeps its blanks; only blanks may follow its
// closing quote. A '"' inside an unquoted cell is an ordinary character (5'11"), and unquoted cells
// are trimmed of blanks and a trailing '\r'. Blank records are skipped. Without the quoting a
// header "label" was not the column label, and "Paris, FR" was two cells. A quoted cell never
// closed, or text after a closing quote, is an error naming the file and the line where its record
// starts.
class CsvRecords {
 public:
  /// Splits `text` (the caller keeps it alive) into its non-blank records. Records end at '\n'
  /// ("\r\n" too), or at '\r' in a file without a '\n' (classic Mac OS line ends, which Excel
  /// for Mac still writes as "CSV (Macintosh)": read as one line of every cell before).
  CsvRecords(std::string_view text, std::string name, char separator = ',');
  CsvRecords(const CsvRecords&) = delete;  // records_ views the text, perhaps mac_text_
  CsvRecords& operator=(const CsvRecords&) = delete;
  std::size_t size() const { return records_.size(); }
  /// The file's line (from 1) where record `r` starts: what an error names.
  std::size_t line(std::size_t r) const { return lines_[r]; }
  /// Record `r`'s cells, unquoted; the views live as long as this object and the text.
  std::vector<std::string_view> cells(std::size_t r);

 private:
  std::string name_;
  char separator_;
  std::string mac_text_;  // a '\r'-separated file with '\n' for its line ends
  std::vector<std::string_view> records_;
  std::vector<std::size_t> lines_;
  bool quotes_ = false;                // any '"' in the text: else the fast split
  std::deque<std::string> unescaped_;  // quoted cells that held '""' (a deque keeps addresses)
};

/// A cell as an error message shows it: its first 40 bytes, control bytes as \xNN (a NUL used
/// to end the message).
std::string shown(std::string_view cell);

/// Blanks (space, and tab unless it is the separator) trimmed from both ends, and a trailing '\r'.
std::string_view trim(std::string_view s, char separator = ',');

}  // namespace cutrain::data::detail
