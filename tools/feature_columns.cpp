// Note [feature columns by name] (tools/feature_columns.hpp).
#include "tools/feature_columns.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cutrain/train/checkpoint.hpp"
#include "cutrain/train/data_spec.hpp"

namespace cutrain::tools {

void check_feature_columns(const std::string& file, const std::vector<std::string>& have,
                           const std::vector<std::string>& want, const char* extra_hint) {
  if (have.empty() || want.empty() || have == want) return;
  std::string list;
  for (std::size_t i = 0; i < want.size() && i < 12; ++i) list += (i ? ", " : "") + want[i];
  if (want.size() > 12) list += ", ...";
  // Every column the model reads is there, in order, and more: a labelled file given to predict
  // (its label column), an identifier - name them rather than count.
  std::vector<std::string> extra;
  std::size_t matched = 0;
  for (const std::string& h : have)
    if (matched < want.size() && h == want[matched])
      ++matched;
    else
      extra.push_back("'" + h + "'");
  if (matched == want.size()) {
    std::string names;
    for (std::size_t k = 0; k < extra.size() && k < 8; ++k) names += (k ? ", " : "") + extra[k];
    throw UsageError(file + ": its column" + (extra.size() > 1 ? "s " : " ") + names +
                     (extra.size() > 8 ? ", ..." : "") + (extra.size() > 1 ? " are" : " is") +
                     " not among the model's feature columns (" + list + "): give those only (" +
                     extra_hint + ")");
  }
  std::size_t i = 0;
  while (i < have.size() && i < want.size() && have[i] == want[i]) ++i;
  const std::string differs =
      i < have.size() && i < want.size()
          ? "its feature column " + std::to_string(i + 1) + " is '" + have[i] + "' where"
          : "it has " + std::to_string(have.size()) + " feature columns where";
  throw UsageError(
      file + ": " + differs + " the training file had " +
      (i < want.size() && i < have.size() ? "'" + want[i] + "'" : std::to_string(want.size())) +
      " (its feature columns: " + list +
      "); the model reads features by position: give the same columns in that order");
}

void check_starting_weights_columns(const Config& c, const TrainData& d) {
  if (d.train.feature_columns.empty()) return;
  for (const auto& [flag, path] :
       {std::pair{"--model-from", &c.model_from}, std::pair{"--init-from", &c.init_from}}) {
    if (path->empty()) continue;
    const std::map<std::string, std::string> meta = train::read_metadata(*path);
    const auto found = meta.find(train::kDataSpecKey);
    if (found == meta.end()) continue;  // e.g. PyTorch's weights: no names to compare
    const train::DataSpec spec = train::DataSpec::from_json(found->second, *path);
    check_feature_columns(
        "--train-csv '" + c.train_csv + "' (training " + flag + " '" + *path + "' further)",
        d.train.feature_columns, spec.feature_columns,
        "columns the weights were not trained on? leave them out with --drop-columns");
  }
}

}  // namespace cutrain::tools
