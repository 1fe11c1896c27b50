// Note [one run per checkpoint] (src/io/file_lock.hpp): one lock per checkpoint file, whoever
// names it and however (a link); released and removed when given back; a lock file left by a
// process that ended holds nothing.
#include "src/io/file_lock.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain::io {
namespace {

namespace fs = std::filesystem;

TEST(FileLock, OneHolderPerFileNamedByItsProcess) {
  const fs::path dir = testing::fresh_dir("cutrain_file_lock_test", "one");
  const std::string ck = (dir / "ck.safetensors").string();
  EXPECT_EQ(FileLock::lock_path(ck), (dir / ".ck.safetensors.lock").string());
  fs::create_symlink("ck.safetensors", dir / "link.safetensors");
  {
    const FileLock held(ck, "checkpoint_path");
    EXPECT_EQ(testing::read_text(dir / ".ck.safetensors.lock"), std::to_string(::getpid()));
    // Another open of the lock - here in this process, as in another - is refused, also when it
    // names the checkpoint through a link.
    for (const std::string& other : {ck, (dir / "link.safetensors").string()}) {
      const std::string e = testing::error_of([&] { FileLock again(other, "checkpoint_path"); });
      EXPECT_NE(e.find("checkpoint_path '" + other + "' is being written by another run (process " +
                       std::to_string(::getpid()) + ")"),
                std::string::npos)
          << e;
    }
  }
  EXPECT_FALSE(fs::exists(dir / ".ck.safetensors.lock")) << "the lock file outlived its lock";
  const FileLock after(ck, "checkpoint_path");  // free again
}

TEST(FileLock, AFileLeftByAnEndedProcessHoldsNothing) {
  const fs::path dir = testing::fresh_dir("cutrain_file_lock_test", "stale");
  std::ofstream(dir / ".ck.safetensors.lock") << "999999";  // written, never locked
  auto lock = std::make_unique<FileLock>((dir / "ck.safetensors").string(), "checkpoint_path");
  EXPECT_EQ(testing::read_text(dir / ".ck.safetensors.lock"), std::to_string(::getpid()));
  lock.reset();
  EXPECT_FALSE(fs::exists(dir / ".ck.safetensors.lock"));
  const std::string e = testing::error_of(
      [&] { FileLock missing((dir / "no_such_dir" / "ck").string(), "checkpoint_path"); });
  EXPECT_NE(e.find("cannot create its lock file"), std::string::npos) << e;
}

// Note [filesystems without locks]: NFS without lockd, gcsfuse, s3fs. The run goes on unlocked
// (it was refused, so --save could not be used there); the lock file is not left behind.
TEST(FileLock, AFilesystemWithoutLocksLeavesTheRunUnlocked) {
  const fs::path dir = testing::fresh_dir("cutrain_file_lock_test", "nolocks");
  const std::string ck = (dir / "ck.safetensors").string();
  struct Restore {
    detail::LockCall saved = detail::lock_call();
    ~Restore() { detail::lock_call() = saved; }
  } restore;
  for (const int error : {ENOLCK, ENOSYS, EOPNOTSUPP}) {
    detail::lock_call() = error == ENOLCK   ? [](int, int) { return errno = ENOLCK, -1; }
                          : error == ENOSYS ? [](int, int) { return errno = ENOSYS, -1; }
                                            : [](int, int) { return errno = EOPNOTSUPP, -1; };
    const FileLock unheld(ck, "checkpoint_path");
    EXPECT_FALSE(unheld.held());
    EXPECT_NE(unheld.unheld().find(std::string("cannot lock files (") + std::strerror(error)),
              std::string::npos)
        << unheld.unheld();
    EXPECT_FALSE(fs::exists(dir / ".ck.safetensors.lock"));
  }
  // Any other failure is still an error naming it.
  detail::lock_call() = [](int, int) { return errno = EBADF, -1; };
  const std::string e = testing::error_of([&] { FileLock bad(ck, "checkpoint_path"); });
  EXPECT_NE(e.find("cannot lock"), std::string::npos) << e;
  detail::lock_call() = restore.saved;
  EXPECT_TRUE(FileLock(ck, "checkpoint_path").held());
}

}  // namespace
}  // namespace cutrain::io
