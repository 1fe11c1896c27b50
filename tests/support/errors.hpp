#pragma once
// The message of the cutrain::Error a call throws ("(no error)" if it throws none), so tests
// can assert that an error says what was wrong.

#include <functional>
#include <string>

#include "cutrain/error.hpp"

namespace cutrain::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace cutrain::testing
