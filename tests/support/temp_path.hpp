#pragma once
// A file path in a per-suite directory under the system's temp directory (created on first use),
// so suites running side by side under ctest -j never share files.

#include <filesystem>
#include <string>

namespace cutrain::testing {

inline std::string temp_path(const std::string& suite_dir, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / suite_dir;
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

}  // namespace cutrain::testing
