// Whole-file reads and gzip inflation (zlib).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"

namespace cutrain::data {

// Note [inflation ratio]: a format without a size in its header (CSV) cannot stop a bomb at the
// size it declares, so its gzip stream may inflate to at most kMaxInflationRatio times the
// compressed bytes (at least kRatioFloorBytes). Text compresses 3-20x, and even a column of
// zeros stays far below 200x at realistic widths; deflate's own ceiling is ~1032x, which is what
// bombs use. A file refused here is read as it is once decompressed (`gunzip FILE`).
inline constexpr std::size_t kMaxInflationRatio = 200;
inline constexpr std::size_t kRatioFloorBytes = std::size_t{64} << 20;

std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> bytes, const std::string& name,
                                 std::size_t max_bytes, const DeclaredSize& declared) {
  bool known = !declared;  // the header's size is known (or there is none to ask)
  std::size_t limit = max_bytes;
  const std::size_t ratio_limit = std::max(
      kRatioFloorBytes,
      bytes.size() > SIZE_MAX / kMaxInflationRatio ? SIZE_MAX : bytes.size() * kMaxInflationRatio);
  const bool by_ratio = !declared && ratio_limit < max_bytes;
  if (by_ratio) limit = ratio_limit;
  z_stream zs{};
  CUTRAIN_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, name, ": zlib could not start");
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(bytes.size(), UINT32_MAX));
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = chunk;
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string msg = zs.msg != nullptr ? zs.msg : "truncated or corrupt data";
      inflateEnd(&zs);
      CUTRAIN_FAIL(name, ": corrupt gzip data (zlib: ", msg, ")");
    }
    const std::size_t produced = sizeof(chunk) - zs.avail_out;
    if (out.size() + produced > limit) {
      inflateEnd(&zs);
      if (by_ratio)
        CUTRAIN_FAIL(name, ": decompresses to more than ", limit, " bytes, over ",
                     kMaxInflationRatio, " times its ", bytes.size(),
                     " compressed bytes (a decompression bomb?); if the data is genuine, "
                     "decompress it first (gunzip) and give the plain file");
      if (limit < max_bytes)
        CUTRAIN_FAIL(name, ": decompresses to more than the ", limit,
                     " bytes its header declares (a decompression bomb, or trailing data)");
      CUTRAIN_FAIL(name, ": decompresses to more than ", max_bytes, " bytes");
    }
    out.insert(out.end(), chunk, chunk + produced);
    if (!known) {
      if (const std::optional<std::size_t> size = declared(out)) {
        known = true;
        limit = std::min(limit, *size);
        if (out.size() > limit) {
          inflateEnd(&zs);
          CUTRAIN_FAIL(name, ": decompresses to more than the ", limit,
                       " bytes its header declares (a decompression bomb, or trailing data)");
        }
      }
    }
    if (rc == Z_OK && zs.avail_in == 0 && produced == 0) {
      inflateEnd(&zs);
      CUTRAIN_FAIL(name, ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

std::vector<std::uint8_t> read_file(const std::string& path, std::size_t max_bytes,
                                    const DeclaredSize& declared, Gzip gzip) {
  std::error_code ec;
  CUTRAIN_CHECK(!std::filesystem::is_directory(path, ec), "'", path,
                "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  CUTRAIN_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  const std::streamoff size = in.tellg();
  CUTRAIN_CHECK(size >= 0, "cannot read the size of '", path, "'");
  CUTRAIN_CHECK(static_cast<std::uint64_t>(size) <= max_bytes, "'", path, "' is larger than ",
                max_bytes, " bytes");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  CUTRAIN_CHECK(in.good() || size == 0, "error reading '", path, "'");
  if (bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B) {
    CUTRAIN_CHECK(gzip == Gzip::kInflate, "'", path,
                  "' is gzip-compressed, and this format is read only as written; decompress it "
                  "first (gunzip)");
    return gunzip(bytes, path, max_bytes, declared);
  }
  return bytes;
}

}  // namespace cutrain::data
