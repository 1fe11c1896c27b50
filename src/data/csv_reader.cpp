// CSV datasets. Format and options: readers.hpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "src/data/csv_columns.hpp"
#include "src/data/csv_numbers.hpp"
#include "src/data/csv_records.hpp"
#include "src/data/label_hints.hpp"

namespace cutrain::data {
namespace {

using detail::check_default_label;
using detail::check_format;
using detail::check_index_columns;
using detail::CsvRecords;
using detail::decimal_hint;
using detail::missing;
using detail::parse_float;
using detail::parse_number;
using detail::shown;

// The first ten names, comma-separated ("..." after them): what an error lists as known.
std::string first_names(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t k = 0; k < names.size() && k < 10; ++k) out += (k ? ", " : "") + names[k];
  return names.size() > 10 ? out + ", ..." : out;
}

// Classification labels: class names when given or when any label is not a number (numbered in
// the names' order, or in sorted order: LabelEncoder's), into d.labels / classes / class_names;
// else the numbers into `values` for the integer path.
void text_or_numeric_labels(Dataset& d, const std::vector<std::string_view>& cells,
                            const CsvRecords& records, std::size_t first, const std::string& name,
                            const CsvOptions& o, std::vector<float>& values) {
  // "nan" or "inf" reads as a number (and then fails as a label): a missing value must not
  // quietly become a class of its own.
  bool text = !o.class_names.empty();
  for (std::size_t i = 0; i < cells.size() && !text; ++i)
    text = !parse_number(cells[i], values[i], o.decimal);
  if (!text) return;
  std::vector<std::string> names = o.class_names;
  if (names.empty()) {
    for (const std::string_view c : cells) names.emplace_back(c);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  }
  CUTRAIN_CHECK(o.classes == 0 || o.classes >= static_cast<std::int32_t>(names.size()), name, ": ",
                names.size(), " class names but classes = ", o.classes);
  CUTRAIN_CHECK(names.size() < 2147483647U, name, ": too many classes");
  d.classes = o.classes > 0 ? o.classes : static_cast<std::int32_t>(names.size());
  d.labels.reserve(cells.size());
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const auto it = std::find(names.begin(), names.end(), cells[i]);
    if (it == names.end()) {
      CUTRAIN_FAIL(name, ":", records.line(i + first), ": label '", shown(cells[i]),
                   "' is not one of the ", names.size(), " classes (", first_names(names), ")");
    }
    d.labels.push_back(static_cast<std::int32_t>(it - names.begin()));
  }
  d.class_names = std::move(names);
}

// The one-hot columns of one file (CsvOptions::categorical / categories): per file column the
// index of its CategoricalColumn or -1, and per one-hot column a lookup from cell to category.
struct OneHot {
  std::vector<CategoricalColumn> columns;
  std::vector<long> of;  // file column -> index into columns, or -1
  std::vector<std::unordered_map<std::string_view, std::size_t>> index;

  std::size_t width(std::size_t c) const {
    return of[c] < 0 ? 1 : columns[static_cast<std::size_t>(of[c])].categories.size();
  }
  // Built once the categories are final: the views point into them.
  void build_index(const std::string& name) {
    index.assign(columns.size(), {});
    for (std::size_t k = 0; k < columns.size(); ++k) {
      const CategoricalColumn& cc = columns[k];
      CUTRAIN_CHECK(!cc.categories.empty() && cc.categories.size() <= kMaxCategories, name,
                    ": categorical column '", cc.name, "' has ", cc.categories.size(),
                    " categories; one-hot encoding takes 1 to ", kMaxCategories,
                    " (one feature each)");
      for (std::size_t i = 0; i < cc.categories.size(); ++i)
        CUTRAIN_CHECK(index[k].emplace(cc.categories[i], i).second, name, ": categorical column '",
                      cc.name, "' lists category '", shown(cc.categories[i]), "' twice");
    }
  }
  // Learns each column's categories from the data rows (sorted, byte order). Rows of the wrong
  // width are left to the main pass to report.
  void learn(CsvRecords& records, std::size_t first, std::size_t width, const std::string& name) {
    std::vector<std::vector<std::string_view>> seen(columns.size());
    for (std::size_t l = first; l < records.size(); ++l) {
      const auto cells = records.cells(l);
      if (cells.size() != width) continue;
      for (std::size_t c = 0; c < width; ++c)
        if (of[c] >= 0) seen[static_cast<std::size_t>(of[c])].push_back(cells[c]);
    }
    for (std::size_t k = 0; k < columns.size(); ++k) {
      std::sort(seen[k].begin(), seen[k].end());
      seen[k].erase(std::unique(seen[k].begin(), seen[k].end()), seen[k].end());
      if (!seen[k].empty() && seen[k].front().empty()) seen[k].erase(seen[k].begin());
      CUTRAIN_CHECK(seen[k].size() <= kMaxCategories, name, ": categorical column '",
                    columns[k].name, "' has ", seen[k].size(),
                    " distinct values; one-hot "
                    "encoding adds a feature for each, at most ",
                    kMaxCategories, " (an identifier column? leave it out)");
      columns[k].categories.assign(seen[k].begin(), seen[k].end());
    }
  }
  // Writes the cell's one-hot block: a 1 at its category, 0 elsewhere.
  void encode(std::size_t c, std::string_view cell, std::vector<float>& x, const std::string& name,
              std::size_t line) const {
    const auto k = static_cast<std::size_t>(of[c]);
    const CategoricalColumn& cc = columns[k];
    const auto it = index[k].find(cell);
    if (it == index[k].end()) {
      CUTRAIN_FAIL(name, ":", line, ": column ", c + 1, " ('", cc.name, "'): category '",
                   shown(cell), "' is not one of the ", cc.categories.size(), " known (",
                   first_names(cc.categories), "); one-hot encoding has no feature for it");
    }
    const std::size_t at = x.size();
    x.resize(at + cc.categories.size(), 0.0F);
    x[at + it->second] = 1.0F;
  }
};

}  // namespace

Dataset parse_csv(std::string_view text, const std::string& name, const CsvOptions& o) {
  // A UTF-8 byte order mark (spreadsheet exports write one) is not part of the first cell: left
  // in, it made a header's first name unmatchable and a first data row look like a header.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  check_format(o, name);
  CsvRecords records(text, name, o.separator);
  CUTRAIN_CHECK(records.size() > 0, name, ": empty CSV file");
  const std::vector<std::string_view> header = records.cells(0);
  bool has_header = o.header == CsvOptions::Header::kYes;
  if (o.header == CsvOptions::Header::kAuto) {
    // A cell that is not a number (nan and inf are numbers here) above one that is: a header. (A
    // text label column is text in
    // every row and says nothing.) A lone row is a header when none of its cells is a number or a
    // known category (a one-row file to predict, "0.5,mauve", is data - its unknown category
    // then reported as such). A known category is data, not text; a first row holding every
    // column named categorical is a header (those names need one, and the columns below them
    // may all be text).
    std::unordered_set<std::string_view> known;
    for (const CategoricalColumn& cc : o.categories)
      known.insert(cc.categories.begin(), cc.categories.end());
    float tmp;
    // A missing marker (NA, ?, an empty cell) is evidence of neither: a headerless file whose
    // first row has a gap lost that row to header detection.
    auto text = [&](std::string_view cell) {
      return !parse_number(cell, tmp, o.decimal) && !known.count(cell) && !missing(cell);
    };
    has_header = !o.categorical.empty() &&
                 std::all_of(o.categorical.begin(), o.categorical.end(), [&](const std::string& n) {
                   return std::find(header.begin(), header.end(), n) != header.end();
                 });
    const std::vector<std::string_view> second =
        records.size() > 1 ? records.cells(1) : std::vector<std::string_view>{};
    if (records.size() == 1)
      has_header = has_header || std::all_of(header.begin(), header.end(), text);
    for (std::size_t c = 0; c < header.size() && records.size() > 1; ++c)
      has_header = has_header || (text(header[c]) && c < second.size() && !text(second[c]));
    // Note [numbered header] (readers.hpp): "0,1,2,...", pandas' names for unnamed columns -
    // after an empty cell when it wrote the index too (Note [index columns] then refuses that).
    // Two cells "0,1" stay data: a row of a two-column file as often as a header.
    const std::size_t from = !header.empty() && header[0].empty() ? 1 : 0;
    bool numbered = header.size() >= from + 3;
    for (std::size_t c = from; c < header.size() && numbered; ++c)
      numbered = header[c] == std::to_string(c - from);
    has_header = has_header || numbered;
  }
  const std::size_t columns = header.size();
  // One column whose first line holds another separator: Excel's CSV in a locale with decimal
  // commas, a TSV, or a comma-separated file read with ';' - say which to give rather than only
  // count.
  struct Separator {
    char c;
    const char* named;  // in the message
    const char* flag;   // --csv-separator's value
  };
  static constexpr Separator kOthers[] = {
      {';', "';'", "';'"}, {'\t', "tabs", "tab"}, {'|', "'|'", "'|'"}, {',', "','", ","}};
  const Separator* other = nullptr;
  for (const Separator& sep : kOthers)
    if (columns == 1 && other == nullptr && sep.c != o.separator &&
        header[0].find(sep.c) != std::string_view::npos)
      other = &sep;
  CUTRAIN_CHECK(o.features_only || columns >= 2, name,
                ": need at least 2 columns (features and a label), found ", columns,
                other == nullptr ? std::string()
                                 : std::string("; its first line is separated by ") + other->named +
                                       ": give that separator (CsvOptions::separator, "
                                       "cutrain-train --csv-separator " +
                                       other->flag + ")");
  // The target columns, in target order: several by name (regression), else the one label.
  std::vector<std::size_t> targets;
  auto by_name = [&](const std::string& wanted, const char* what) {
    CUTRAIN_CHECK(has_header, name, ": ", what, " column '", wanted,
                  "' chosen by name but the file has no header");
    const auto named = std::find(header.begin(), header.end(), wanted);
    if (named != header.end()) {
      // A name twice (a join's two "id" columns, a spreadsheet's copy) is no choice of one.
      const auto again = std::find(named + 1, header.end(), wanted);
      CUTRAIN_CHECK(again == header.end(), name, ": ", what, " column '", wanted,
                    "' names columns ", named - header.begin() + 1, " and ",
                    again - header.begin() + 1, "; rename one");
      return static_cast<std::size_t>(named - header.begin());
    }
    std::string names;  // the header's first columns, to choose from (each at most 40 bytes)
    for (std::size_t c = 0; c < std::min<std::size_t>(columns, 12); ++c)
      names.append(c > 0 ? ", " : "").append(shown(header[c]));
    CUTRAIN_FAIL(name, ": no column named '", wanted, "' in the header (its columns: ", names,
                 columns > 12 ? ", ..." : "", ")");
  };
  if (!o.features_only && !o.target_names.empty()) {
    CUTRAIN_CHECK(!o.classification, name,
                  ": several target columns are for regression (classification = false)");
    for (const std::string& t : o.target_names) {
      const std::size_t c = by_name(t, "target");
      CUTRAIN_CHECK(std::find(targets.begin(), targets.end(), c) == targets.end(), name,
                    ": target column '", t, "' named twice");
      targets.push_back(c);
    }
    CUTRAIN_CHECK(targets.size() < columns, name, ": every column is a target; no features left");
  }
  if (o.features_only) {
    // no target: every column is a feature
  } else if (targets.empty() && !o.label_name.empty()) {
    targets.push_back(by_name(o.label_name, "label"));
  } else if (targets.empty()) {
    const long idx = o.label_index < 0 ? static_cast<long>(columns) + o.label_index : o.label_index;
    CUTRAIN_CHECK(idx >= 0 && idx < static_cast<long>(columns), name, ": label column index ",
                  o.label_index, " is outside the ", columns, " columns");
    targets.push_back(static_cast<std::size_t>(idx));
  }
  // Each column's place among the targets (a row's targets keep their given order), -1 for a
  // feature, kDropped for a column CsvOptions::drop_columns leaves out, kId for the id column.
  constexpr long kDropped = -2;
  constexpr long kId = -3;
  const auto taken = [&](long p) {  // why a column cannot also be something else
    return p == kDropped ? "' is dropped; it cannot also be "
           : p == kId    ? "' is the id column; it cannot also be "
                         : "' is the label or a target; it cannot also be ";
  };
  std::vector<long> place(columns, -1);
  for (std::size_t t = 0; t < targets.size(); ++t) place[targets[t]] = static_cast<long>(t);
  CUTRAIN_CHECK(o.drop_columns.empty() || has_header, name,
                ": columns to drop are named, but the file has no header");
  for (const std::string& n : o.drop_columns) {
    const auto at = std::find(header.begin(), header.end(), n);
    if (at == header.end() && o.features_only) continue;  // new rows to predict may lack it
    const std::size_t c = by_name(n, "dropped");
    CUTRAIN_CHECK(place[c] == -1, name, ": column '", n,
                  place[c] == kDropped ? "' is to be dropped twice" : taken(place[c]), "dropped");
    place[c] = kDropped;
  }
  // Note [id column]: a features-only file may lack it (or a header); a labelled one may not.
  const bool id_named = !o.id_column.empty() && has_header &&
                        std::find(header.begin(), header.end(), o.id_column) != header.end();
  if (!o.id_column.empty() && (id_named || !o.features_only)) {
    CUTRAIN_CHECK(has_header, name, ": the id column '", o.id_column,
                  "' is named, but the file has no header");
    const std::size_t c = by_name(o.id_column, "id");
    CUTRAIN_CHECK(place[c] == -1, name, ": column '", o.id_column, taken(place[c]),
                  "the id column");
    place[c] = kId;
  }
  if (!o.label_chosen && has_header && !o.features_only && targets.size() == 1)
    check_default_label(header, place, targets[0], name);
  const std::size_t width = targets.size();
  const std::size_t first = has_header ? 1 : 0;
  if (has_header) {
    std::vector<std::string> kept(header.begin(), header.end());  // a dropped index is fine
    for (std::size_t c = 0; c < columns; ++c)
      if (place[c] == kDropped || place[c] == kId) kept[c] = "(dropped)";
    check_index_columns(records, kept, first, name, o);
  }
  // One-hot columns: known categories by feature-column position, or named columns learned here.
  std::vector<std::size_t> feature_columns;  // feature position -> file column
  for (std::size_t c = 0; c < columns; ++c)
    if (place[c] == -1) feature_columns.push_back(c);
  OneHot one_hot;
  one_hot.of.assign(columns, -1);
  auto add_one_hot = [&](std::size_t c, CategoricalColumn cc) {
    CUTRAIN_CHECK(place[c] == -1, name, ": column '", cc.name, taken(place[c]),
                  "a categorical feature");
    CUTRAIN_CHECK(one_hot.of[c] < 0, name, ": categorical column '", cc.name, "' given twice");
    cc.column =
        std::find(feature_columns.begin(), feature_columns.end(), c) - feature_columns.begin();
    one_hot.of[c] = static_cast<long>(one_hot.columns.size());
    one_hot.columns.push_back(std::move(cc));
  };
  if (!o.categories.empty()) {
    for (const CategoricalColumn& cc : o.categories) {
      CUTRAIN_CHECK(cc.column >= 0 && cc.column < static_cast<std::int64_t>(feature_columns.size()),
                    name, ": categorical column '", cc.name, "' is feature column ", cc.column + 1,
                    " but the file has ", feature_columns.size(), " feature columns");
      add_one_hot(feature_columns[static_cast<std::size_t>(cc.column)], cc);
    }
  } else {
    for (const std::string& n : o.categorical) add_one_hot(by_name(n, "categorical"), {n, 0, {}});
    one_hot.learn(records, first, columns, name);
  }
  one_hot.build_index(name);
  Dataset d;
  d.features = 0;
  for (const std::size_t c : feature_columns)
    d.features += static_cast<std::int64_t>(one_hot.width(c));
  d.rows = static_cast<std::int64_t>(records.size() - first);
  CUTRAIN_CHECK(d.rows > 0, name, ": no data rows after the header");
  d.x.reserve(static_cast<std::size_t>(d.rows) * static_cast<std::size_t>(d.features));
  d.categorical = one_hot.columns;
  if (has_header)
    for (const std::size_t c : feature_columns) d.feature_columns.emplace_back(header[c]);
  std::vector<float> label_values(static_cast<std::size_t>(d.rows) * width);
  std::vector<std::string_view> label_cells;  // classification: the label as written
  for (std::size_t l = first; l < records.size(); ++l) {
    const auto cells = records.cells(l);
    const std::size_t line = records.line(l);
    CUTRAIN_CHECK(cells.size() == columns, name, ":", line, ": ", cells.size(),
                  " cells where the first row has ", columns, " (ragged row)");
    for (std::size_t c = 0; c < columns; ++c) {
      if (place[c] == kId) d.row_ids.emplace_back(cells[c]);
      if (place[c] == kDropped || place[c] == kId) continue;
      float v = 0;
      if (place[c] < 0 && one_hot.of[c] < 0 && missing(cells[c])) {
        CUTRAIN_CHECK(o.allow_missing, name, ":", line, ": column ", c + 1, ": missing value ('",
                      shown(cells[c]),
                      "'); fill it in, or impute it (CsvOptions::allow_missing, then "
                      "data::Imputer; cutrain-train --impute mean)");
        d.x.push_back(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      CUTRAIN_CHECK(!cells[c].empty(), name, ":", line, ": empty cell in column ", c + 1);
      if (o.classification && place[c] >= 0) {
        label_cells.push_back(cells[c]);
        continue;
      }
      if (one_hot.of[c] >= 0) {
        one_hot.encode(c, cells[c], d.x, name, line);
        continue;
      }
      if (!parse_float(cells[c], v, o.decimal)) {
        const std::string hint = decimal_hint(cells[c], o.decimal);
        CUTRAIN_FAIL(name, ":", line, ": column ", c + 1, ": '", shown(cells[c]),
                     "' is not a finite number",
                     !hint.empty()  ? hint
                     : place[c] < 0 ? " (categories? one-hot encode the column: "
                                      "CsvOptions::categorical, cutrain-train --categorical; "
                                      "ids or free text? leave it out: --id-column, "
                                      "--drop-columns)"
                                    : "");
      }
      if (place[c] < 0)
        d.x.push_back(v);
      else
        label_values[(l - first) * width + static_cast<std::size_t>(place[c])] = v;
    }
  }
  if (o.features_only) return d;  // data to predict
  if (o.classification) {
    text_or_numeric_labels(d, label_cells, records, first, name, o, label_values);
    if (!d.class_names.empty()) return d;  // text labels: done
  }
  if (o.classification) {
    float max_label = 0;
    for (std::size_t i = 0; i < label_values.size(); ++i) {
      const float v = label_values[i];
      CUTRAIN_CHECK(std::isfinite(v) && v >= 0 && v == std::floor(v), name, ":",
                    records.line(i / width + first), ": label ", v,
                    " is not a non-negative integer", detail::label_hint(v));
      // Labels travel as float here: above 2^24 neighbouring integers are the same float.
      CUTRAIN_CHECK(v < 16777216.0F, name, ":", records.line(i / width + first), ": label ", v,
                    " is not below 2^24 (class labels number the classes)");
      max_label = std::max(max_label, v);
    }
    d.classes = o.classes > 0 ? o.classes : static_cast<std::int32_t>(max_label) + 1;
    d.labels.reserve(label_values.size());
    for (std::size_t i = 0; i < label_values.size(); ++i) {
      CUTRAIN_CHECK(label_values[i] < static_cast<float>(d.classes), name, ":",
                    records.line(i / width + first), ": label ", label_values[i],
                    " is outside [0, ", d.classes, ")");
      d.labels.push_back(static_cast<std::int32_t>(label_values[i]));
    }
  } else {
    d.targets = std::move(label_values);
    d.target_width = static_cast<std::int64_t>(width);
  }
  return d;
}

Dataset read_csv(const std::string& path, const CsvOptions& options) {
  const std::vector<std::uint8_t> bytes = read_file(path);
  return parse_csv(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                   path, options);
}

}  // namespace cutrain::data
