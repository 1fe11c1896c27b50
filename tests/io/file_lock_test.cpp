// Note [one run per checkpoint] (src/io/file_lock.hpp): one lock per checkpoint file, whoever
// names it and however (a link); released and removed when given back; a lock file left by a
// process that ended holds nothing.
#include "src/io/file_lock.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace cutrain::io
