// Note [one run per checkpoint] (src/io/file_lock.hpp).
#include "src/io/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"

namespace cutrain::io {
namespace {

// The holder's process id as it wrote it ("" when it has not yet, or holds it some other way).
std::string holder_of(int fd) {
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  std::string pid(text, n > 0 ? static_cast<std::size_t>(n) : 0);
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : std::string();
}

}  // namespace

detail::LockCall& detail::lock_call() {
  static LockCall call = &::flock;
  return call;
}

std::string FileLock::lock_path(const std::string& path) {
  const std::filesystem::path target(resolve_links(path));
  std::string name = ".";
  name.append(target.filename().string()).append(".lock");
  return (target.parent_path() / name).string();
}

FileLock::FileLock(const std::string& path, const std::string& what) : lock_path_(lock_path(path)) {
  // A file removed by its holder between our open and our lock is not the lock any more: the
  // inode locked must still be the one the path names, or we open it again.
  for (int tries = 0;; ++tries) {
    Descriptor file(::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    CUTRAIN_CHECK(file.fd() >= 0, what, " '", path, "': cannot create its lock file '", lock_path_,
                  "': ", std::strerror(errno));
    int locked = 0;
    while ((locked = detail::lock_call()(file.fd(), LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (locked != 0 &&
        (errno == ENOLCK || errno == ENOSYS || errno == ENOTSUP || errno == EOPNOTSUPP)) {
      // Note [filesystems without locks]: the file would only be litter there.
      unheld_ = std::string("its filesystem cannot lock files (") + std::strerror(errno) + ")";
      file.close();
      (void)::unlink(lock_path_.c_str());
      std::fprintf(stderr,
                   "cutrain: %s '%s': %s; the run goes on without the lock that refuses a "
                   "second run writing this file\n",
                   what.c_str(), path.c_str(), unheld_.c_str());
      return;
    }
    if (locked != 0) {
      CUTRAIN_CHECK(errno == EWOULDBLOCK, what, " '", path, "': cannot lock '", lock_path_,
                    "': ", std::strerror(errno));
      const std::string pid = holder_of(file.fd());
      CUTRAIN_FAIL(what, " '", path, "' is being written by another run",
                   pid.empty() ? std::string() : " (process " + pid + ")",
                   ": two runs writing one file would replace each other's epochs; give "
                   "this run another file, or let that one finish (its lock: '",
                   lock_path_, "')");
    }
    struct stat held {
    }, named{};
    if (::fstat(file.fd(), &held) == 0 && ::stat(lock_path_.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      const std::string pid = std::to_string(::getpid());
      // The id is what a refused run names; a lock without it still excludes.
      if (::ftruncate(file.fd(), 0) == 0 &&
          ::pwrite(file.fd(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        (void)::ftruncate(file.fd(), 0);
      }
      file_ = std::move(file);
      return;
    }
    CUTRAIN_CHECK(tries < 100, what, " '", path, "': its lock file '", lock_path_,
                  "' keeps being replaced");
  }
}

FileLock::~FileLock() {
  if (file_.fd() < 0) return;
  ::unlink(lock_path_.c_str());  // while locked: a run that opened it sees another inode, retries
  file_.close();
}

}  // namespace cutrain::io
