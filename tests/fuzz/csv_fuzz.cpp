// libFuzzer target: the CSV parser on arbitrary text, with the label column chosen by index and
// by name, as classification (numeric or text labels, and text labels numbered by given class
// names) and regression, with two regression targets by name, as features only, and with
// one-hot columns (named, and with known categories), with missing values imputed, and with
// the other separators (';' with decimal commas, tabs: Note [CSV separators]), and with columns
// dropped by name and the label column left to its default (Note [a label column left a feature]),
// and with an id column (Note [id column]) in a labelled file and in new rows.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cutrain::data::CsvOptions options[15];
  options[1].label_name = "label";
  options[2].classification = false;
  options[2].label_index = 0;
  options[3].classification = false;
  options[3].target_names = {"y", "label"};
  options[4].class_names = {"ant", "bee", "3"};
  options[5].features_only = true;
  options[6].label_name = "label";  // one-hot columns learned from the text
  options[6].categorical = {"a", "b"};
  options[7].features_only = true;  // ... and known (a prediction file)
  options[7].categories = {{"a", 0, {"x", "y", "1"}}, {"b", 2, {"z"}}};
  options[8].allow_missing = true;  // missing features as NaN, then filled
  options[8].categorical = {"b"};
  options[9].separator = ';';  // Excel's, with decimal commas
  options[9].decimal = ',';
  options[9].label_name = "label";
  options[10].separator = '\t';  // a TSV: tabs separate, never trimmed
  options[10].allow_missing = true;
  options[11].drop_columns = {"id", "b"};  // left out; the label by default (not chosen)
  options[11].label_chosen = false;
  options[12].features_only = true;  // new rows: dropped columns may be absent
  options[12].drop_columns = {"id"};
  options[12].header = cutrain::data::CsvOptions::Header::kYes;
  options[13].id_column = "id";  // the rows' ids, left out of the features
  options[13].drop_columns = {"b"};
  options[14].features_only = true;  // new rows: the id column may be absent
  options[14].id_column = "id";
  options[14].categories = {{"a", 0, {"x", "y", "1"}}};
  for (const auto& o : options) {
    try {
      auto d = cutrain::data::parse_csv(text, "fuzz.csv", o);
      if (o.allow_missing && d.rows > 0 && d.features > 0)
        cutrain::data::Imputer::fit(d, cutrain::data::Imputer::Strategy::kMedian).apply(d);
      d.validate();
    } catch (const cutrain::Error&) {
    }
  }
  return 0;
}
