#pragma once
// cutrain::Error — the one exception type the library throws.
//
// Every message says what was wrong and, where there is one, how to fix it; errors from CUDA,
// cuBLAS and cuRAND name the failing call, the file:line and the library's own error string.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cutrain {

/// The one exception type cutrain throws; its message names what is wrong and, where there is one,
/// the fix.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}  ///< what: the message
};

namespace detail {

/// Concatenates anything streamable: detail::cat("lr = ", lr, " must be >= 0").
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

[[noreturn]] void throw_error(const std::string& message, const char* file, int line);

}  // namespace detail
}  // namespace cutrain

// Throws cutrain::Error with the streamed message and the source location unless `cond` holds.
#define CUTRAIN_CHECK(cond, ...)                                                               \
  do {                                                                                         \
    if (!(cond))                                                                               \
      ::cutrain::detail::throw_error(::cutrain::detail::cat(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

#define CUTRAIN_FAIL(...) \
  ::cutrain::detail::throw_error(::cutrain::detail::cat(__VA_ARGS__), __FILE__, __LINE__)
