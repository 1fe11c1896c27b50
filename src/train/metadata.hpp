#pragma once
// Reading the string metadata of cutrain's safetensors files (checkpoints, torch.optim state).

#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>

#include "cutrain/error.hpp"

namespace cutrain::train::detail {

// A decimal integer of type T, the whole string (no sign other than '-', no spaces), as written
// by std::to_string; a missing key or anything else is a cutrain::Error naming the file and key.
template <class T>
T meta_integer(const std::map<std::string, std::string>& m, const std::string& key,
               const std::string& path) {
  const auto it = m.find(key);
  CUTRAIN_CHECK(it != m.end(), path, ": metadata '", key, "' is missing");
  const std::string& text = it->second;
  T v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  CUTRAIN_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(), path,
                ": metadata '", key, "' = '", text, "' is not ",
                std::is_signed_v<T> ? "an integer" : "an unsigned integer");
  return v;
}

inline std::int64_t meta_int(const std::map<std::string, std::string>& m, const std::string& key,
                             const std::string& path) {
  return meta_integer<std::int64_t>(m, key, path);
}

// Seeds: unsigned 64-bit.
inline std::uint64_t meta_uint(const std::map<std::string, std::string>& m, const std::string& key,
                               const std::string& path) {
  return meta_integer<std::uint64_t>(m, key, path);
}

}  // namespace cutrain::train::detail
