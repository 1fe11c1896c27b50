// Note [data spec in exports] (include/cutrain/train/data_spec.hpp).
#include "cutrain/train/data_spec.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"

namespace cutrain::train {

std::int64_t DataSpec::apply(data::Dataset& d) const {
  const std::int64_t filled = impute.empty() ? 0 : data::Imputer{impute}.apply(d);
  if (scale != 1.0F) data::scale(d, scale);
  if (!mean.empty()) data::Standardizer{mean, stddev}.apply(d);
  return filled;
}

std::string DataSpec::to_json() const {
  nlohmann::json j = {{"scale", scale}, {"regression", regression}};
  if (!mean.empty()) j["standardize"] = {{"mean", mean}, {"std", stddev}};
  if (!class_names.empty()) j["class_names"] = class_names;
  if (!target_names.empty()) j["target_names"] = target_names;
  if (!impute.empty()) j["impute"] = impute;
  if (!feature_columns.empty()) j["feature_columns"] = feature_columns;
  if (!drop_columns.empty()) j["drop_columns"] = drop_columns;
  if (!id_column.empty()) j["id_column"] = id_column;
  for (const data::CategoricalColumn& c : categorical)
    j["categorical"].push_back(
        {{"name", c.name}, {"column", c.column}, {"categories", c.categories}});
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

std::string names(const std::vector<std::string>& v) {
  if (v.empty()) return "none";
  std::string out;
  for (std::size_t k = 0; k < v.size() && k < 8; ++k) out += (k ? ", " : "") + v[k];
  return v.size() > 8 ? out + ", ..." : out;
}

}  // namespace

std::string DataSpec::differs_from(const DataSpec& saved) const {
  const auto was = [](const char* what, const std::string& now, const std::string& then) {
    return std::string(what) + " " + now + " where the checkpoint's were " + then;
  };
  if (!feature_columns.empty() && !saved.feature_columns.empty() &&
      feature_columns != saved.feature_columns)
    return was("feature columns", names(feature_columns), names(saved.feature_columns));
  for (std::size_t k = 0; k < std::max(categorical.size(), saved.categorical.size()); ++k) {
    const bool both = k < categorical.size() && k < saved.categorical.size();
    if (both && categorical[k].name == saved.categorical[k].name &&
        categorical[k].column == saved.categorical[k].column &&
        categorical[k].categories == saved.categorical[k].categories)
      continue;
    return was("one-hot columns",
               k < categorical.size()
                   ? "'" + categorical[k].name + "' (" + names(categorical[k].categories) + ")"
                   : "fewer",
               k < saved.categorical.size() ? "'" + saved.categorical[k].name + "' (" +
                                                  names(saved.categorical[k].categories) + ")"
                                            : "fewer");
  }
  if (regression != saved.regression)
    return regression ? "regression targets where the checkpoint has classes"
                      : "classes where the checkpoint has regression targets";
  if (class_names != saved.class_names)
    return was("class names", names(class_names), names(saved.class_names));
  if (target_names != saved.target_names)
    return was("target names", names(target_names), names(saved.target_names));
  if (scale != saved.scale) return "features scaled otherwise (another kind of data file)";
  if (mean.empty() != saved.mean.empty())
    return mean.empty() ? "features not standardized where the checkpoint's were"
                        : "features standardized where the checkpoint's were not";
  if (impute.empty() != saved.impute.empty())
    return impute.empty() ? "missing values not imputed where the checkpoint's were"
                          : "missing values imputed where the checkpoint's were not";
  return "";
}

DataSpec DataSpec::from_json(std::string_view text, const std::string& where) {
  DataSpec s;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    s.scale = j.at("scale").get<float>();
    s.regression = j.at("regression").get<bool>();
    if (j.contains("standardize")) {
      s.mean = j.at("standardize").at("mean").get<std::vector<float>>();
      s.stddev = j.at("standardize").at("std").get<std::vector<float>>();
    }
    if (j.contains("class_names"))
      s.class_names = j.at("class_names").get<std::vector<std::string>>();
    if (j.contains("target_names"))
      s.target_names = j.at("target_names").get<std::vector<std::string>>();
    if (j.contains("impute")) s.impute = j.at("impute").get<std::vector<float>>();
    if (j.contains("feature_columns"))
      s.feature_columns = j.at("feature_columns").get<std::vector<std::string>>();
    if (j.contains("drop_columns"))
      s.drop_columns = j.at("drop_columns").get<std::vector<std::string>>();
    if (j.contains("id_column")) s.id_column = j.at("id_column").get<std::string>();
    if (j.contains("categorical"))
      for (const nlohmann::json& c : j.at("categorical"))
        s.categorical.push_back({c.at("name").get<std::string>(),
                                 c.at("column").get<std::int64_t>(),
                                 c.at("categories").get<std::vector<std::string>>()});
  } catch (const nlohmann::json::exception& e) {
    CUTRAIN_FAIL(where, ": metadata \"", kDataSpecKey, "\" is not a data spec (", e.what(), ")");
  }
  CUTRAIN_CHECK(std::isfinite(s.scale) && s.scale != 0.0F, where, ": data spec scale ", s.scale,
                " must be finite and non-zero");
  CUTRAIN_CHECK(s.mean.size() == s.stddev.size(), where, ": data spec has ", s.mean.size(),
                " means but ", s.stddev.size(), " standard deviations");
  for (std::size_t i = 0; i < s.mean.size(); ++i)
    CUTRAIN_CHECK(std::isfinite(s.mean[i]) && std::isfinite(s.stddev[i]) && s.stddev[i] >= 0, where,
                  ": data spec feature ", i, " has mean ", s.mean[i], " and stddev ", s.stddev[i],
                  "; need finite values and stddev >= 0");
  for (std::size_t i = 0; i < s.impute.size(); ++i)
    CUTRAIN_CHECK(std::isfinite(s.impute[i]), where, ": data spec fills missing values of feature ",
                  i, " with ", s.impute[i], "; need a finite value");
  std::set<std::int64_t> columns;
  for (const data::CategoricalColumn& c : s.categorical) {
    CUTRAIN_CHECK(c.column >= 0 && columns.insert(c.column).second, where,
                  ": data spec one-hot column '", c.name, "' has position ", c.column,
                  " (negative, or given twice)");
    CUTRAIN_CHECK(!c.categories.empty() && c.categories.size() <= data::kMaxCategories, where,
                  ": data spec one-hot column '", c.name, "' has ", c.categories.size(),
                  " categories; valid: 1 to ", data::kMaxCategories);
    const std::set<std::string> distinct(c.categories.begin(), c.categories.end());
    CUTRAIN_CHECK(distinct.size() == c.categories.size(), where, ": data spec one-hot column '",
                  c.name, "' lists a category twice");
  }
  return s;
}

}  // namespace cutrain::train
