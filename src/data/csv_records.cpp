// Note [CSV quoting] (csv_records.hpp).
#include "src/data/csv_records.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "cutrain/error.hpp"

namespace cutrain::data::detail {
namespace {

// A tab separates cells in a TSV: a blank only elsewhere.
bool blank(char c, char separator) {
  return (c == ' ' || c == '\t') && c != separator;
}

struct Cell {
  std::string_view text;  // unquoted: trimmed; quoted: between the quotes, '""' still doubled
  bool escaped = false;   // quoted and holding '""'
};

// Reads the cell that starts at `pos` of `s` (a record, or the whole file while records are
// found) into `cell`, counting the line breaks inside quotes into `breaks`; returns the position
// of what ended it: the separator, '\n' or s.size(). `line` is the record's, for errors.
std::size_t scan_cell(std::string_view s, std::size_t pos, char separator, Cell& cell,
                      std::size_t& breaks, const std::string& name, std::size_t line) {
  std::size_t p = pos;
  while (p < s.size() && blank(s[p], separator)) ++p;
  if (p == s.size() || s[p] != '"') {
    const char ends[] = {separator, '\n', '\0'};
    const std::size_t end = std::min(s.find_first_of(ends, pos), s.size());
    cell = {trim(s.substr(pos, end - pos), separator), false};
    return end;
  }
  const std::size_t open = ++p;
  cell.escaped = false;
  for (;;) {
    const std::size_t q = s.find('"', p);
    if (q == std::string_view::npos) {
      CUTRAIN_FAIL(name, ":", line, ": a quoted cell is never closed (it starts \"",
                   shown(s.substr(open, 40)), "); a '\"' in a quoted cell is written '\"\"'");
    }
    breaks +=
        static_cast<std::size_t>(std::count(s.begin() + static_cast<std::ptrdiff_t>(p),
                                            s.begin() + static_cast<std::ptrdiff_t>(q), '\n'));
    if (q + 1 < s.size() && s[q + 1] == '"') {  // '""': a quote inside the cell
      cell.escaped = true;
      p = q + 2;
      continue;
    }
    cell.text = s.substr(open, q - open);
    p = q + 1;
    break;
  }
  while (p < s.size() && (blank(s[p], separator) || s[p] == '\r')) ++p;
  if (p < s.size() && s[p] != separator && s[p] != '\n') {
    CUTRAIN_FAIL(name, ":", line, ": text after the closing quote of \"", shown(cell.text),
                 "\" (a '\"' in a quoted cell is written '\"\"')");
  }
  return p;
}

// The length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlong forms, surrogates or
// code points past U+10FFFF), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  const std::size_t n = c >= 0xC2 && c <= 0xDF   ? 2
                        : c >= 0xE0 && c <= 0xEF ? 3
                        : c >= 0xF0 && c <= 0xF4 ? 4
                                                 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F) || (c == 0xF0 && b(1) < 0x90) ||
      (c == 0xF4 && b(1) > 0x8F))
    return 0;
  return n;
}

// Note [CSV text is UTF-8]: names read from a CSV (a header's, text labels, categories) travel
// into JSON (exports, checkpoints, reports), which holds UTF-8 alone: a Latin-1 "caf\xE9" ended
// the run with nlohmann's "[json.exception.type_error.316] incomplete UTF-8 string" before its
// first step. As pandas' read_csv does by default, a file in another encoding is refused at the
// first byte that is not UTF-8, naming its line, with the conversion to make.
void check_utf8(std::string_view text, const std::string& name, char separator) {
  // UTF-16's byte order marks: Excel's "Unicode Text" and PowerShell's default output.
  CUTRAIN_CHECK(!text.starts_with("\xFF\xFE") && !text.starts_with("\xFE\xFF"), name,
                ": the file is UTF-16 text, not UTF-8; save it as \"CSV UTF-8\", or convert it, "
                "e.g. iconv -f utf-16 -t utf-8 FILE > FILE.utf8.csv");
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {  // ASCII: the common case, byte by byte
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(text, i);
    if (n > 0) {
      i += n;
      continue;
    }
    // The cell around it, for the message: from the separator or line break before it to the next.
    const char ends[] = {separator, '\n', '\0'};
    const std::size_t before = text.find_last_of(ends, i);
    const std::size_t start = before == std::string_view::npos ? 0 : before + 1;
    const std::size_t end = std::min(text.find_first_of(ends, i), text.size());
    const auto line = 1 + static_cast<std::size_t>(std::count(
                              text.begin(), text.begin() + static_cast<std::ptrdiff_t>(i), '\n'));
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[i]));
    CUTRAIN_FAIL(name, ":", line, ": byte ", byte, " in '", shown(text.substr(start, end - start)),
                 "' is not UTF-8: the file is in another encoding (Latin-1? Windows-1252?); "
                 "convert it, e.g. iconv -f cp1252 -t utf-8 FILE > FILE.utf8.csv");
  }
}

std::string unescape(std::string_view quoted) {
  std::string out;
  out.reserve(quoted.size());
  for (std::size_t i = 0; i < quoted.size(); ++i) {
    out.push_back(quoted[i]);
    if (quoted[i] == '"') ++i;  // the second of the pair
  }
  return out;
}

}  // namespace

std::string_view trim(std::string_view s, char separator) {
  while (!s.empty() && blank(s.front(), separator)) s.remove_prefix(1);
  while (!s.empty() && (blank(s.back(), separator) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string shown(std::string_view cell) {
  const std::string_view head = cell.substr(0, 40);
  std::string out;
  for (std::size_t i = 0; i < head.size();) {
    const auto u = static_cast<unsigned char>(head[i]);
    const std::size_t n = u < 0x20 || u == 0x7F ? 0 : utf8_length(head, i);
    if (n > 0) {
      out.append(head.substr(i, n));
      i += n;
    } else {  // a control byte, or one that is not UTF-8 (the message stays UTF-8)
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", u);
      out += hex;
      ++i;
    }
  }
  return cell.size() > 40 ? out + "..." : out;
}

CsvRecords::CsvRecords(std::string_view text, std::string name, char separator)
    : name_(std::move(name)),
      separator_(separator),
      quotes_(text.find('"') != std::string_view::npos) {
  if (text.find('\n') == std::string_view::npos && text.find('\r') != std::string_view::npos) {
    mac_text_.assign(text);
    std::replace(mac_text_.begin(), mac_text_.end(), '\r', '\n');
    text = mac_text_;
  }
  check_utf8(text, name_, separator_);  // after: its error names the line
  std::size_t line = 1;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t first_line = line;
    std::size_t end = 0;
    if (!quotes_) {
      end = std::min(text.find('\n', pos), text.size());
    } else {  // cell by cell: a quoted cell may hold line breaks
      Cell cell;
      for (end = pos;; ++end) {
        end = scan_cell(text, end, separator_, cell, line, name_, first_line);
        if (end == text.size() || text[end] == '\n') break;
      }
    }
    const std::string_view record = text.substr(pos, end - pos);
    if (!trim(record, separator_).empty()) {
      records_.push_back(record);
      lines_.push_back(first_line);
    }
    ++line;
    pos = end + 1;
  }
}

std::vector<std::string_view> CsvRecords::cells(std::size_t r) {
  const std::string_view s = records_[r];
  std::vector<std::string_view> out;
  if (!quotes_) {
    for (std::size_t start = 0;;) {
      const std::size_t at = s.find(separator_, start);
      out.push_back(
          trim(s.substr(start, at == std::string_view::npos ? s.npos : at - start), separator_));
      if (at == std::string_view::npos) return out;
      start = at + 1;
    }
  }
  std::size_t breaks = 0;
  Cell cell;
  for (std::size_t pos = 0;; ++pos) {
    pos = scan_cell(s, pos, separator_, cell, breaks, name_, lines_[r]);
    if (cell.escaped) {
      unescaped_.push_back(unescape(cell.text));
      out.emplace_back(unescaped_.back());
    } else {
      out.push_back(cell.text);
    }
    if (pos == s.size()) return out;
  }
}

}  // namespace cutrain::data::detail
