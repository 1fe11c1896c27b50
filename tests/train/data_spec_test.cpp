// Note [data spec in exports]: the spec round-trips through JSON bit for bit, applies as the
// training data was prepared (scale, then data::Standardizer's rule), travels in an export's
// metadata, and malformed specs are refused naming the file.
#include "cutrain/train/data_spec.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "trainer_fixture.hpp"

namespace cutrain::train {
namespace {

TEST(DataSpec, RoundTripsAndAppliesAsTraining) {
  DataSpec s;
  s.scale = 1.0F / 255.0F;
  s.mean = {0.1F, 1.0F / 3.0F, -7.25F};
  s.stddev = {2.0F, 0.0F, 1e-3F};
  s.class_names = {"ant", "moose", "zebra"};
  s.categorical = {{"color", 1, {"blue", "red"}}, {"zip", 4, {"10", "9", "a \"quoted\" one"}}};
  s.impute = {0.5F, 1.0F / 7.0F, -3.0F};
  s.feature_columns = {"age", "color", "Paris, FR", "zip"};
  s.drop_columns = {"PassengerId", "Name"};
  s.id_column = "Customer \"ID\", EU";
  const DataSpec back = DataSpec::from_json(s.to_json(), "m.safetensors");
  EXPECT_EQ(back.impute, s.impute);
  EXPECT_EQ(back.feature_columns, s.feature_columns);
  EXPECT_EQ(back.drop_columns, s.drop_columns);
  EXPECT_EQ(back.id_column, s.id_column);
  ASSERT_EQ(back.categorical.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(back.categorical[k].name, s.categorical[k].name);
    EXPECT_EQ(back.categorical[k].column, s.categorical[k].column);
    EXPECT_EQ(back.categorical[k].categories, s.categorical[k].categories);
  }
  EXPECT_EQ(back.scale, s.scale);
  EXPECT_EQ(back.mean, s.mean);  // bit for bit: floats survive the JSON text
  EXPECT_EQ(back.stddev, s.stddev);
  EXPECT_EQ(back.class_names, s.class_names);
  EXPECT_FALSE(back.regression);
  // apply = fill missing values, scale, then per-feature (x - mean) / stddev; a zero stddev
  // only centers.
  data::Dataset d;
  d.rows = 2;
  d.features = 3;
  d.x = {255.0F, 510.0F, 0.0F, NAN, 510.0F, NAN};
  EXPECT_EQ(back.apply(d), 2);
  data::Dataset want;
  want.rows = 2;
  want.features = 3;
  want.x = {255.0F, 510.0F, 0.0F, 0.5F, 510.0F, -3.0F};
  data::scale(want, 1.0F / 255.0F);
  data::Standardizer{s.mean, s.stddev}.apply(want);
  EXPECT_EQ(d.x, want.x);
  EXPECT_EQ(d.x[1], 2.0F - 1.0F / 3.0F);
}

TEST(DataSpec, RefusesMalformedSpecs) {
  auto error = [](const std::string& json) {
    return testing::error_of([&] { DataSpec::from_json(json, "m.safetensors"); });
  };
  EXPECT_NE(error("{").find("m.safetensors: metadata \"cutrain.data\" is not a data spec"),
            std::string::npos);
  EXPECT_NE(error(R"({"scale": 1})").find("not a data spec"), std::string::npos);
  EXPECT_NE(error(R"({"scale": 0, "regression": false})").find("scale 0"), std::string::npos);
  EXPECT_NE(
      error(R"({"scale": 1, "regression": false, "standardize": {"mean": [1, 2], "std": [1]}})")
          .find("2 means but 1 standard deviations"),
      std::string::npos);
  EXPECT_NE(error(R"({"scale": 1, "regression": false, "standardize": {"mean": [1], "std": [-1]}})")
                .find("stddev >= 0"),
            std::string::npos);
  EXPECT_NE(
      error(R"({"scale": 1, "regression": false, "impute": [1, "x"]})").find("not a data spec"),
      std::string::npos);
  const std::string base = R"({"scale": 1, "regression": false, "categorical": )";
  EXPECT_NE(error(base + R"([{"name": "c", "column": 0, "categories": []}]})").find("0 categories"),
            std::string::npos);
  EXPECT_NE(error(base + R"([{"name": "c", "column": 0, "categories": ["a", "a"]}]})")
                .find("one-hot column 'c' lists a category twice"),
            std::string::npos);
  EXPECT_NE(error(base + R"([{"name": "c", "column": 2, "categories": ["a"]},
                             {"name": "d", "column": 2, "categories": ["b"]}]})")
                .find("one-hot column 'd' has position 2 (negative, or given twice)"),
            std::string::npos);
  EXPECT_NE(error(base + R"([{"name": "c", "column": -1, "categories": ["a"]}]})")
                .find("has position -1"),
            std::string::npos);
  EXPECT_NE(error(base + R"([{"name": "c", "categories": ["a"]}]})").find("not a data spec"),
            std::string::npos);
}

TEST(DataSpec, TravelsInAnExport) {
  nn::Sequential m = testing_fixture::model(2);
  DataSpec s;
  s.regression = true;
  s.target_names = {"y"};
  const std::string path = testing_fixture::tmp("spec.safetensors");
  export_torch(path, m, {{kDataSpecKey, s.to_json()}});
  const auto meta = read_metadata(path);
  EXPECT_EQ(meta.at("cutrain.modules"), m.torch_modules());
  const DataSpec back = DataSpec::from_json(meta.at(kDataSpecKey), path);
  EXPECT_TRUE(back.regression);
  EXPECT_EQ(back.target_names, s.target_names);
  EXPECT_NE(testing::error_of([&] {
              export_torch(path, m, {{"format", "x"}});
            }).find("metadata key 'format' is the export's own"),
            std::string::npos);
}

// Note [data spec on resume]: each thing a model reads by is compared; the statistics' values
// are not (refitted on the same split they are the same).
TEST(DataSpec, DiffersFromNamesWhatTheModelWouldReadOtherwise) {
  DataSpec saved;
  saved.feature_columns = {"age", "colour", "fare"};
  saved.categorical = {{"colour", 1, {"blue", "red"}}};
  saved.class_names = {"no", "yes"};
  saved.mean = {1, 2, 3, 4};
  saved.stddev = {1, 1, 1, 1};
  const auto differs = [&](const std::function<void(DataSpec&)>& change) {
    DataSpec now = saved;
    change(now);
    return now.differs_from(saved);
  };
  EXPECT_EQ(differs([](DataSpec&) {}), "");
  EXPECT_EQ(differs([](DataSpec& s) { s.mean = {5, 6, 7, 8}; }), "");      // refitted statistics
  EXPECT_EQ(differs([](DataSpec& s) { s.feature_columns.clear(); }), "");  // a headerless file
  EXPECT_EQ(differs([](DataSpec& s) {
              s.feature_columns = {"age", "fare", "colour"};
            }),
            "feature columns age, fare, colour where the checkpoint's were age, colour, fare");
  EXPECT_EQ(differs([](DataSpec& s) { s.categorical[0].categories.push_back("green"); }),
            "one-hot columns 'colour' (blue, red, green) where the checkpoint's were 'colour' "
            "(blue, red)");
  EXPECT_EQ(differs([](DataSpec& s) { s.categorical.clear(); }),
            "one-hot columns fewer where the checkpoint's were 'colour' (blue, red)");
  EXPECT_EQ(differs([](DataSpec& s) { s.regression = true; }),
            "regression targets where the checkpoint has classes");
  EXPECT_EQ(differs([](DataSpec& s) {
              s.class_names = {"0", "1"};
            }),
            "class names 0, 1 where the checkpoint's were no, yes");
  EXPECT_EQ(differs([](DataSpec& s) { s.target_names = {"y"}; }),
            "target names y where the checkpoint's were none");
  EXPECT_EQ(differs([](DataSpec& s) { s.scale = 1.0F / 255.0F; }),
            "features scaled otherwise (another kind of data file)");
  EXPECT_EQ(differs([](DataSpec& s) { s.mean.clear(); }),
            "features not standardized where the checkpoint's were");
  EXPECT_EQ(differs([](DataSpec& s) {
              s.impute = {0, 0, 0, 0};
            }),
            "missing values imputed where the checkpoint's were not");
}

}  // namespace
}  // namespace cutrain::train
