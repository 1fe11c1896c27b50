// The single-process runs of tests/train/resume_anywhere.hpp (Note [mid-epoch resume] across
// combinations of options); tests/dist/dist_test.cpp runs them over two ranks.
#include <unistd.h>

#include <string>

#include "train/resume_anywhere.hpp"

namespace cutrain::train {
namespace {

TEST(ResumeAnywhere, StoppedAndResumedRunsAreTheUninterruptedRun) {
  constexpr unsigned kConfigurations = 150;
  const int compared = resume_anywhere::check_resume_anywhere(
      1, kConfigurations, "process" + std::to_string(::getpid()));
  // Most configurations were resumed (a stop drawn after an early stop is never reached).
  EXPECT_GT(compared, static_cast<int>(kConfigurations) * 2 / 3);
}

}  // namespace
}  // namespace cutrain::train
