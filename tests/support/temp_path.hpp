#pragma once
// A file path in a per-suite directory under the system's temp directory (created on first use),
// so suites running side by side under ctest -j never share files; a fresh directory in it; a
// file read back whole.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace cutrain::testing {

inline std::string temp_path(const std::string& suite_dir, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / suite_dir;
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// A new, empty directory `name` in the suite's (one test case's own: cases run side by side).
inline std::filesystem::path fresh_dir(const std::string& suite_dir, const std::string& name) {
  std::filesystem::path dir = temp_path(suite_dir, name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// A file's bytes as a string ("" when it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace cutrain::testing
