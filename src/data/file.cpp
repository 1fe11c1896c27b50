// Whole-file reads and gzip inflation (zlib).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "src/io/descriptor.hpp"

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

namespace {

// Up to `n` bytes into `dst`; fewer only at the end of the data. EINTR is retried.
std::size_t read_some(int fd, std::uint8_t* dst, std::size_t n, const std::string& path) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, dst + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    CUTRAIN_CHECK(r >= 0, "error reading '", path, "': ", std::strerror(errno));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

// Whether a pipe has data or an end to read now: a writer has connected (poll says POLLIN or
// POLLHUP only once one has; Linux suppresses the hang-up of a pipe no writer has opened yet).
bool has_writer(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace

// Note [reading pipes]: a path may name a pipe - bash's <(zcat data.csv.gz) gives /dev/fd/63,
// and a named pipe (mkfifo) is one too. The file is opened non-blocking, so a named pipe that no
// process writes does not block the open forever (it reads as empty, and is refused as such);
// a writer is waited for up to io::kPipeWaitMs (`mkfifo p; cutrain ... p & cat a.csv > p`);
// then blocking reads take what a writer sends until it closes, capped at max_bytes as a file's
// size is. Devices (/dev/zero, a terminal) are refused: they have no end, or wait on a person.
std::vector<std::uint8_t> read_file(const std::string& path, std::size_t max_bytes,
                                    const DeclaredSize& declared, Gzip gzip) {
  const io::Descriptor file(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  CUTRAIN_CHECK(file.fd() >= 0, "cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  CUTRAIN_CHECK(::fstat(file.fd(), &st) == 0, "cannot read the size of '", path,
                "': ", std::strerror(errno));
  CUTRAIN_CHECK(!S_ISDIR(st.st_mode), "'", path, "' is a directory, not a file");
  const bool pipe = S_ISFIFO(st.st_mode);
  CUTRAIN_CHECK(S_ISREG(st.st_mode) || pipe, "'", path,
                "' is a device or socket, not a file or a pipe");
  const int flags = ::fcntl(file.fd(), F_GETFL);
  CUTRAIN_CHECK(flags >= 0 && ::fcntl(file.fd(), F_SETFL, flags & ~O_NONBLOCK) == 0,
                "cannot read '", path, "': ", std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  if (!pipe) {
    const auto size = static_cast<std::uint64_t>(st.st_size);
    CUTRAIN_CHECK(size <= max_bytes, "'", path, "' is larger than ", max_bytes, " bytes");
    bytes.resize(static_cast<std::size_t>(size));
    CUTRAIN_CHECK(read_some(file.fd(), bytes.data(), bytes.size(), path) == bytes.size(),
                  "error reading '", path, "': it ended before its ", size,
                  " bytes (truncated while read?)");
  } else {
    // A writer that opens after us is waited for, briefly (Note [reading pipes]).
    bool writer = has_writer(file.fd());
    for (int tries = 0; tries < io::kPipeWaitMs / 50 && !writer; ++tries) {
      ::usleep(50'000);
      writer = has_writer(file.fd());
    }
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    for (;;) {
      const std::size_t have = bytes.size();
      bytes.resize(have + kChunk);
      const std::size_t got = read_some(file.fd(), bytes.data() + have, kChunk, path);
      bytes.resize(have + got);
      CUTRAIN_CHECK(bytes.size() <= max_bytes, "'", path, "' (a pipe) gave more than ", max_bytes,
                    " bytes");
      if (got < kChunk) break;
    }
    CUTRAIN_CHECK(!bytes.empty() || writer, "'", path,
                  "' is a pipe that gave no data: nothing wrote to it within ",
                  io::kPipeWaitMs / 1000, " s");
    // A pipe reads once: a file read twice (--describe, --model-from: a model file's modules,
    // then its tensors) finds it drained the second time.
    CUTRAIN_CHECK(!bytes.empty(), "'", path,
                  "' is a pipe that gave no data (its writer sent none, or it was read already: "
                  "give a file)");
  }
  if (bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B) {
    CUTRAIN_CHECK(gzip == Gzip::kInflate, "'", path,
                  "' is gzip-compressed, and this format is read only as written; decompress it "
                  "first (gunzip)");
    return gunzip(bytes, path, max_bytes, declared);
  }
  return bytes;
}

}  // namespace cutrain::data
