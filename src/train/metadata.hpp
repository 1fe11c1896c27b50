#pragma once
// Reading the string metadata of cutrain's safetensors files (checkpoints, torch.optim state).

#include <charconv>
#include <cstdint>
#include <map>
#include <string>

#include "cutrain/error.hpp"

namespace cutrain::train::detail {

// A decimal integer, the whole string (no sign other than '-', no spaces), as written by
// std::to_string; a missing key or anything else is a cutrain::Error naming the file and key.
inline std::int64_t meta_int(const std::map<std::string, std::string>& m, const std::string& key,
                             const std::string& path) {
  const auto it = m.find(key);
  CUTRAIN_CHECK(it != m.end(), path, ": metadata '", key, "' is missing");
  const std::string& text = it->second;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  CUTRAIN_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(), path,
                ": metadata '", key, "' = '", text, "' is not an integer");
  return v;
}

// The same for an unsigned 64-bit value (seeds), as std::to_string writes it.
inline std::uint64_t meta_uint(const std::map<std::string, std::string>& m, const std::string& key,
                               const std::string& path) {
  const auto it = m.find(key);
  CUTRAIN_CHECK(it != m.end(), path, ": metadata '", key, "' is missing");
  const std::string& text = it->second;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  CUTRAIN_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(), path,
                ": metadata '", key, "' = '", text, "' is not an unsigned integer");
  return v;
}

}  // namespace cutrain::train::detail
