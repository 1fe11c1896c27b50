// Switches read from the environment (src/core/environment.hpp).
#include "src/core/environment.hpp"

#include <cstdlib>
#include <cstring>

#include "cutrain/error.hpp"

namespace cutrain::detail {

bool env_switch(const char* name, bool fallback, const char* when_0, const char* when_1) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  if (std::strcmp(v, "1") == 0) return true;
  if (std::strcmp(v, "0") == 0) return false;
  CUTRAIN_FAIL(name, "=", v, " is not 0 (", when_0, ") or 1 (", when_1, ")");
}

}  // namespace cutrain::detail
