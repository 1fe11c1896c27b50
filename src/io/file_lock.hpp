#pragma once
// Note [one run per checkpoint]: a training run that saves checkpoints holds an advisory lock
// (flock) on a lock file beside its checkpoint, ".<name>.lock", for as long as it trains. A second
// run naming the same file - the same command started twice, a scheduler's duplicate of a job
// that resumes with --resume auto - is refused, naming the process that holds it, instead of
// both writing the file in turn, each replacing the other's epochs. The kernel releases the lock
// when its process ends however it ends, so a crashed run never leaves a stale one; the file is
// removed when the lock is given back (a killed process leaves an empty, unlocked file). The
// metrics file a run appends to takes the same lock: two runs of a sweep naming one lost the
// first run's lines to the second's truncation.
//
// Note [filesystems without locks]: NFS without its lock daemon (ENOLCK) and FUSE mounts such as
// gcsfuse or s3fs (ENOSYS, ENOTSUP) cannot lock at all. Refusing there made --save unusable on
// such a mount, so the run goes on unlocked - held() false - and says so once on stderr: the
// protection is lost, not the run.

#include <string>

#include "src/io/descriptor.hpp"

namespace cutrain::io {

class FileLock {
 public:
  /// Locks the lock file of `path` (its symbolic links followed, so two links to one checkpoint
  /// share it). Throws cutrain::Error when another open file holds it - another process, or
  /// another run of this one - naming `what` ("checkpoint_path") and the holder's process id.
  FileLock(const std::string& path, const std::string& what);
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  /// Removes the lock file, then releases the lock.
  ~FileLock();
  /// The lock file's path: "<directory>/.<name>.lock".
  static std::string lock_path(const std::string& path);
  /// False where the filesystem cannot lock (Note [filesystems without locks]); unheld() says why.
  bool held() const { return unheld_.empty(); }
  const std::string& unheld() const { return unheld_; }  ///< "" when held

 private:
  std::string lock_path_;
  Descriptor file_;
  std::string unheld_;
};

namespace detail {
/// ::flock, through a pointer tests replace to act out a filesystem without locks.
using LockCall = int (*)(int fd, int operation);
LockCall& lock_call();
}  // namespace detail

}  // namespace cutrain::io
