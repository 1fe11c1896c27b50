// Note [host memory check] (src/core/host_memory.hpp).
#include "src/core/host_memory.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string>

namespace cutrain::detail {
namespace {

// The leading decimal number of `text` (after spaces), or nullopt.
std::optional<std::uint64_t> leading_number(std::string_view text) {
  const std::size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data() + begin, text.data() + text.size(), v);
  if (ec != std::errc{} || end == text.data() + begin) return std::nullopt;
  return v;
}

// The kB value of a /proc/meminfo field ("MemAvailable:   23976316 kB"), in bytes.
std::optional<std::uint64_t> field_bytes(std::string_view meminfo, std::string_view name) {
  for (std::size_t at = 0; at < meminfo.size();) {
    const std::size_t eol = std::min(meminfo.find('\n', at), meminfo.size());
    const std::string_view line = meminfo.substr(at, eol - at);
    at = eol + 1;
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      const std::optional<std::uint64_t> kb = leading_number(line.substr(name.size() + 1));
      if (!kb || *kb > UINT64_MAX / 1024) return std::nullopt;
      return *kb * 1024;
    }
  }
  return std::nullopt;
}

std::string read_small_file(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::string text;
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return text;
}

}  // namespace

std::optional<std::uint64_t> meminfo_available(std::string_view meminfo) {
  const std::optional<std::uint64_t> available = field_bytes(meminfo, "MemAvailable");
  if (!available) return std::nullopt;
  const std::uint64_t swap = field_bytes(meminfo, "SwapFree").value_or(0);
  return *available + std::min(swap, UINT64_MAX - *available);
}

std::optional<std::uint64_t> cgroup_available(std::string_view max, std::string_view current) {
  const std::optional<std::uint64_t> limit = leading_number(max);
  const std::optional<std::uint64_t> used = leading_number(current);
  if (!limit || !used) return std::nullopt;
  return *limit > *used ? *limit - *used : 0;
}

std::optional<std::uint64_t> host_memory_available() {
  std::optional<std::uint64_t> available = meminfo_available(read_small_file("/proc/meminfo"));
  const std::optional<std::uint64_t> cgroup =
      cgroup_available(read_small_file("/sys/fs/cgroup/memory.max"),
                       read_small_file("/sys/fs/cgroup/memory.current"));
  if (cgroup) available = available ? std::min(*available, *cgroup) : *cgroup;
  return available;
}

}  // namespace cutrain::detail
