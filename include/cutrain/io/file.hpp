#pragma once
// Writing a file whole: every file cutrain writes (checkpoints, exports, and cutrain-train's
// reports and predictions) goes through write_file_atomic - a temporary file in the same
// directory, fsync, rename, fsync of the directory - so a full disk, a kill or a crash at any
// point leaves the previous file, never a truncated one. Reading is data::read_file
// (cutrain/data/readers.hpp).

#include <cstdint>
#include <span>
#include <string>

namespace cutrain::io {

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, directory fsync): a
/// failure leaves the previous file. A symlink is followed (its target replaced, the link kept);
/// a device or pipe (/dev/null) is written in place and this process's own descriptors
/// (/dev/stdout, /dev/fd/N) where they point - a rename would replace the link or device node.
void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes);
/// The descriptor `path` names when it is one of this process's own (/dev/stdout 1,
/// /dev/stderr 2, /dev/fd/N, /proc/self/fd/N), else -1.
int own_descriptor(const std::string& path);
/// `path` with its symbolic links followed to what they name (which need not exist yet), or to
/// one of this process's own descriptors (/dev/stdin: /proc/self/fd/0).
std::string resolve_links(const std::string& path);

}  // namespace cutrain::io
