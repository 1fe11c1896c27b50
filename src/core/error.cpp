#include "cutrain/error.hpp"

#include <cstring>

namespace cutrain::detail {

void throw_error(const std::string& message, const char* file, int line) {
  // Keep the path from the project root onwards: users see "src/core/arena.cpp:42".
  const char* shown = file;
  for (const char* marker : {"/src/", "/kernels/", "/include/"}) {
    if (const char* p = std::strstr(file, marker)) {
      shown = p + 1;
      break;
    }
  }
  throw Error(cat("cutrain: ", message, " [", shown, ':', line, ']'));
}

}  // namespace cutrain::detail
