#pragma once
// File descriptors for cutrain's readers and writers: one RAII owner, the wait on a named pipe's
// other end, and writes that a pipe's departed reader turns into an error instead of SIGPIPE
// (Note [writing to pipes], src/io/descriptor.cpp).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace cutrain::io {

/// How long a named pipe's other end is waited for - a writer when it is read
/// (data::read_file, Note [reading pipes]), a reader when it is written - before it is refused.
inline constexpr int kPipeWaitMs = 5000;

/// An open file descriptor, closed on every path out (-1: none).
class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(Descriptor&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Descriptor& operator=(Descriptor&& o) noexcept;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor();
  int fd() const { return fd_; }
  /// Closes now; false (errno set) where close reported an error - a write the kernel had
  /// deferred failed (NFS, a full quota).
  bool close();

 private:
  int fd_ = -1;
};

/// Opens `path` - a device or a named pipe, written in place (Note [writing over links and
/// devices], cutrain/io/file.hpp) - for writing. A named pipe that no process reads would block
/// the open forever: it is opened without blocking and waited on up to kPipeWaitMs for a reader,
/// then refused with cutrain::Error naming it.
Descriptor open_in_place(const std::string& path);

/// All of `bytes` to `fd`, EINTR retried; false with errno set on a failed write - EPIPE where a
/// pipe's reader has gone: SIGPIPE, whose default action would end the process, is held back for
/// the write (Note [writing to pipes]).
bool write_all(int fd, std::span<const std::uint8_t> bytes);

/// A file written a piece at a time and kept as written (the trainer's metrics file): created,
/// truncated or appended to; a device or pipe written in place (open_in_place); this process's
/// own descriptors (/dev/stdout) where they point. Throws cutrain::Error naming the file.
class StreamFile {
 public:
  StreamFile() = default;  ///< writes nothing
  /// Opens `path`; `append` keeps a regular file's contents and writes after them. `what`
  /// names the file in errors ("the metrics file").
  StreamFile(const std::string& path, bool append, std::string what = "the file");
  bool is_open() const { return file_.fd() >= 0; }
  /// Writes `text` now (no buffering: a killed run keeps every whole piece); throws
  /// cutrain::Error, naming the file, where it could not (a full disk, a reader gone).
  void write(std::string_view text);

 private:
  std::string path_, what_;
  Descriptor file_;
};

}  // namespace cutrain::io
