// Descriptors, in-place opens and writes (src/io/descriptor.hpp).
//
// Note [writing to pipes]: an output may be a pipe - a named one (mkfifo), bash's >(gzip > f), or
// stdout piped to `head`. Two of a pipe's behaviours would cost a run everything it trained:
// - open(O_WRONLY) on a named pipe blocks until a process opens it for reading - forever when
//   none does, at the end of a run that has finished training. It is opened with O_NONBLOCK,
//   which fails with ENXIO while no reader is there, retried for up to kPipeWaitMs (as a pipe
//   being read waits for its writer, Note [reading pipes]) and then refused, naming the file.
// - A write to a pipe whose reader has gone raises SIGPIPE, whose default action ends the
//   process: the other outputs are never written. A write holds SIGPIPE blocked in the writing
//   thread (the kernel sends it to the thread that wrote), discards the one its write raised and
//   restores the mask, so the write fails with EPIPE and the caller reports it like a full disk.
//   A library must not change the process's disposition (SIG_IGN), which the program owns.
#include "src/io/descriptor.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <utility>

#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"

namespace cutrain::io {
namespace {

// SIGPIPE blocked in this thread while alive; one it raised meanwhile is discarded at the end
// (Note [writing to pipes]). One already pending, or blocked by the caller, is left as it was.
class SigpipeHeld {
 public:
  SigpipeHeld() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    const bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    held_ = !was_pending && pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0 &&
            sigismember(&old_, SIGPIPE) == 0;
  }
  SigpipeHeld(const SigpipeHeld&) = delete;
  SigpipeHeld& operator=(const SigpipeHeld&) = delete;
  ~SigpipeHeld() {
    if (!held_) return;
    const int saved = errno;  // the failed write's reason, for the caller
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      const timespec now{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &now) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }

 private:
  sigset_t pipe_{}, old_{};
  bool held_ = false;
};

}  // namespace

Descriptor& Descriptor::operator=(Descriptor&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Descriptor::~Descriptor() {
  close();
}

bool Descriptor::close() {
  if (fd_ < 0) return true;
  const int fd = fd_;
  fd_ = -1;
  return ::close(fd) == 0;
}

bool write_all(int fd, std::span<const std::uint8_t> bytes) {
  const SigpipeHeld held;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<std::size_t>(w);
  }
  return true;
}

Descriptor open_in_place(const std::string& path) {
  if (const int own = own_descriptor(path); own >= 0) {
    const int fd = ::fcntl(own, F_DUPFD_CLOEXEC, 0);
    CUTRAIN_CHECK(fd >= 0, "cannot write '", path, "': ", std::strerror(errno));
    return Descriptor(fd);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) {
    Descriptor file(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    CUTRAIN_CHECK(file.fd() >= 0, "cannot open '", path, "': ", std::strerror(errno));
    return file;
  }
  constexpr int kPollMs = 50;
  for (int waited = 0;; waited += kPollMs) {
    Descriptor file(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (file.fd() >= 0) {
      // Blocking from here on: a slow reader is waited for, as a disk is.
      const int flags = ::fcntl(file.fd(), F_GETFL);
      CUTRAIN_CHECK(flags >= 0 && ::fcntl(file.fd(), F_SETFL, flags & ~O_NONBLOCK) == 0,
                    "cannot write '", path, "': ", std::strerror(errno));
      return file;
    }
    CUTRAIN_CHECK(errno == ENXIO || errno == EINTR, "cannot open '", path,
                  "': ", std::strerror(errno));
    CUTRAIN_CHECK(waited < kPipeWaitMs, "'", path,
                  "' is a pipe that no process reads: nothing opened it for reading within ",
                  kPipeWaitMs / 1000, " s");
    ::usleep(kPollMs * 1000);
  }
}

StreamFile::StreamFile(const std::string& path, bool append, std::string what)
    : path_(path), what_(std::move(what)) {
  struct stat st {};
  if (own_descriptor(path) >= 0 || (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))) {
    CUTRAIN_CHECK(!S_ISDIR(st.st_mode), "'", path, "' is a directory, not a file");
    file_ = open_in_place(path);
    return;
  }
  file_ = Descriptor(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644));
  CUTRAIN_CHECK(file_.fd() >= 0, "cannot create ", what_, " '", path, "': ", std::strerror(errno));
}

void StreamFile::write(std::string_view text) {
  if (!is_open()) return;
  CUTRAIN_CHECK(
      write_all(file_.fd(), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}),
      "cannot write ", what_, " '", path_, "': ", std::strerror(errno));
}

}  // namespace cutrain::io
