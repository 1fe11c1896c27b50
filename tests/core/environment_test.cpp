// detail::env_switch (src/core/environment.hpp): unset is the default, 1 and 0 switch, anything
// else - a typo such as "off", which would have meant "on" to a test for "0" - is an error naming
// the variable, the value and what each value selects.
#include "src/core/environment.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cutrain/error.hpp"
#include "support/errors.hpp"

namespace cutrain::detail {
namespace {

constexpr const char* kName = "CUTRAIN_TEST_SWITCH";

bool read(bool fallback) {
  return env_switch(kName, fallback, "the other way", "this way");
}

TEST(EnvSwitch, UnsetIsTheDefaultOneAndZeroSwitchAnythingElseIsNamed) {
  unsetenv(kName);
  EXPECT_TRUE(read(true));
  EXPECT_FALSE(read(false));
  setenv(kName, "1", 1);
  EXPECT_TRUE(read(false));
  setenv(kName, "0", 1);
  EXPECT_FALSE(read(true));
  for (const char* typo : {"off", "on", "yes", "", "01", " 1"}) {
    setenv(kName, typo, 1);
    const std::string e = testing::error_of([] { read(true); });
    EXPECT_NE(e.find(std::string(kName) + "=" + typo + " is not 0 (the other way) or 1 (this way)"),
              std::string::npos)
        << e;
  }
  unsetenv(kName);
}

}  // namespace
}  // namespace cutrain::detail
