// Note [numbers in files] (src/core/numbers.hpp): a run in an application that set a German
// locale (setlocale(LC_ALL, "") in de_DE, as Qt does on start) writes the files a run in the "C"
// locale writes, byte for byte - the metrics CSV, the checkpoint with its plateau schedule, best
// metric and loss options - and its checkpoint resumes in the "C" locale. printf wrote "0,5".
#include <gtest/gtest.h>

#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_path.hpp"
#include "trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using testing_fixture::blobs;
using testing_fixture::model;

// Options with every number the files carry: validation (a best metric), a plateau schedule
// (its saved state), label smoothing and class weights (the loss options a resume compares).
TrainerOptions every_number(std::int64_t epochs) {
  TrainerOptions o = testing_fixture::options(epochs);
  o.schedule = std::make_shared<optim::ReduceLrOnPlateau>(0.01, 0.5, 0);
  o.label_smoothing = 0.1F;
  o.class_weights = {0.5F, 1.25F, 2.0F / 3.0F};
  return o;
}

void run(const std::filesystem::path& dir) {
  nn::Sequential m = model(3);
  optim::AdamW opt(m.parameters(), {.lr = 0.01F});
  TrainerOptions o = every_number(3);
  o.metrics_path = (dir / "metrics.csv").string();
  o.checkpoint_path = (dir / "run.safetensors").string();
  const data::Dataset val = blobs(64, 8);
  Trainer(m, opt, o).fit(blobs(256, 7), &val);
}

// The metrics CSV without its timing columns (seconds, samples_per_s: the clock's), each line
// checked to hold its 10 fields - a decimal comma made more.
std::string untimed(const std::string& csv) {
  std::string out;
  std::size_t start = 0;
  while (start < csv.size()) {
    const std::size_t end = csv.find('\n', start);
    const std::string line = csv.substr(start, end - start);
    std::vector<std::string> fields;
    for (std::size_t a = 0;;) {
      const std::size_t b = line.find(',', a);
      fields.push_back(line.substr(a, b == std::string::npos ? b : b - a));
      if (b == std::string::npos) break;
      a = b + 1;
    }
    EXPECT_EQ(fields.size(), 10U) << line;
    for (std::size_t k = 0; k < fields.size(); ++k)
      if (k != 7 && k != 8) out += fields[k] + ';';
    out += '\n';
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

struct CLocaleAfter {
  ~CLocaleAfter() {
    std::setlocale(LC_ALL, "C");
    unsetenv("LOCPATH");
  }
};

TEST(Locale, FilesAreTheSameInACommaLocaleAndResumeInC) {
  const std::filesystem::path dir = testing::fresh_dir("cutrain_locale_test", "comma");
  // de_DE compiled into the test's directory and found through LOCPATH: no root, no locale
  // installed on the machine.
  const std::string build =
      "localedef -i de_DE -f UTF-8 '" + (dir / "de_DE.UTF-8").string() + "' >/dev/null 2>&1";
  if (std::system(build.c_str()) != 0 && !std::filesystem::exists(dir / "de_DE.UTF-8"))
    GTEST_SKIP() << "localedef could not build de_DE.UTF-8 (glibc's locale sources missing)";
  const CLocaleAfter restore;
  std::filesystem::create_directories(dir / "c");
  std::filesystem::create_directories(dir / "de");
  run(dir / "c");
  setenv("LOCPATH", dir.c_str(), 1);
  ASSERT_NE(std::setlocale(LC_ALL, "de_DE.UTF-8"), nullptr);
  char comma[16];
  std::snprintf(comma, sizeof comma, "%.1f", 0.5);
  ASSERT_STREQ(comma, "0,5");  // the locale is in force: printf would write this
  run(dir / "de");
  std::setlocale(LC_ALL, "C");
  const std::string c_metrics = testing::read_text(dir / "c" / "metrics.csv");
  ASSERT_FALSE(c_metrics.empty());
  EXPECT_EQ(untimed(testing::read_text(dir / "de" / "metrics.csv")), untimed(c_metrics));
  const std::string c_checkpoint = testing::read_text(dir / "c" / "run.safetensors");
  ASSERT_FALSE(c_checkpoint.empty());
  EXPECT_EQ(testing::read_text(dir / "de" / "run.safetensors"), c_checkpoint)
      << "the checkpoint differs in de_DE";
  // The German run's checkpoint resumes in the "C" locale, its plateau state and best metric
  // read back.
  nn::Sequential m = model(3);
  optim::AdamW opt(m.parameters(), {.lr = 0.01F});
  Trainer t(m, opt, every_number(4));
  EXPECT_NO_THROW(t.resume((dir / "de" / "run.safetensors").string()));
}

}  // namespace
}  // namespace cutrain::train
