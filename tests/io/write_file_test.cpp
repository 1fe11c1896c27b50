// io::write_file_atomic (Note [writing over links and devices]): a file is replaced whole, a
// link's target is written and the link kept, a pipe is written in place, this process's own
// descriptors where they point, and the partial files killed writers left are removed.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "cutrain/io/file.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain::io {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

TEST(WriteFile, ReplacesAFileWholeAndLeavesNothingBeside) {
  const fs::path dir = testing::fresh_dir("cutrain_io_test", "replace");
  const fs::path file = dir / "out.json";
  std::ofstream(file) << "the previous contents, longer than the new ones";
  write_file_atomic(file.string(), bytes_of("new"));
  EXPECT_EQ(testing::read_text(file), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// Note [partial files of killed runs]: before NAME is written, the temporary files of killed
// writers of NAME (their process gone, not written for a minute) are removed; a live process's,
// a fresh one's and other names' are left.
TEST(WriteFile, RemovesThePartialFilesOfKilledWriters) {
  const fs::path dir = testing::fresh_dir("cutrain_io_test", "partial");
  const pid_t child = ::fork();  // a process id that is free again once the child is reaped
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::string dead = std::to_string(child);
  const auto minutes_ago = fs::file_time_type::clock::now() - std::chrono::minutes(2);
  auto partial = [&](const std::string& name, bool old) {
    const fs::path p = dir / name;
    std::ofstream(p) << "a partial file";
    if (old) fs::last_write_time(p, minutes_ago);
    return p;
  };
  const fs::path stale = partial(".out.json.tmp." + dead, true);
  const fs::path fresh = partial(".out.json.tmp." + dead + "0", false);  // being written?
  const fs::path live = partial(".out.json.tmp." + std::to_string(::getppid()), true);
  const fs::path other = partial(".other.json.tmp." + dead, true);
  const fs::path not_ours = partial(".out.json.tmp." + dead + "x", true);
  write_file_atomic((dir / "out.json").string(), bytes_of("whole"));
  EXPECT_FALSE(fs::exists(stale));
  for (const fs::path& kept : {fresh, live, other, not_ours}) EXPECT_TRUE(fs::exists(kept)) << kept;
  EXPECT_EQ(testing::read_text(dir / "out.json"), "whole");
}

// A file replaced keeps its permission bits (the rename used to give it the umask's 0644: a
// group-only report became world-readable); a new file takes the umask's.
TEST(WriteFile, AReplacedFileKeepsItsPermissions) {
  const fs::path dir = testing::fresh_dir("cutrain_io_test", "mode");
  const fs::path kept = dir / "kept.json", fresh = dir / "fresh.json";
  std::ofstream(kept) << "old";
  ASSERT_EQ(::chmod(kept.c_str(), 0640), 0);
  write_file_atomic(kept.string(), bytes_of("new"));
  struct stat st {};
  ASSERT_EQ(::stat(kept.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640U);
  EXPECT_EQ(testing::read_text(kept), "new");
  const mode_t mask = ::umask(022);
  write_file_atomic(fresh.string(), bytes_of("new"));
  ::umask(mask);
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644U);
}

TEST(WriteFile, FollowsLinksAndKeepsThem) {
  const fs::path dir = testing::fresh_dir("cutrain_io_test", "links");
  fs::create_directories(dir / "real");
  // A link to a file that does not exist yet, through a relative target and a second link.
  fs::create_symlink("real/target.json", dir / "hop.json");
  fs::create_symlink("hop.json", dir / "link.json");
  write_file_atomic((dir / "link.json").string(), bytes_of("through two links"));
  EXPECT_TRUE(fs::is_symlink(dir / "link.json"));
  EXPECT_TRUE(fs::is_symlink(dir / "hop.json"));
  EXPECT_EQ(testing::read_text(dir / "real" / "target.json"), "through two links");
  EXPECT_EQ(resolve_links((dir / "link.json").string()), (dir / "real/target.json").string());
  // A loop is refused, not followed forever.
  fs::create_symlink("b", dir / "a");
  fs::create_symlink("a", dir / "b");
  const std::string e = testing::error_of([&] { write_file_atomic((dir / "a").string(), {}); });
  EXPECT_NE(e.find("too many levels of symbolic links"), std::string::npos) << e;
}

TEST(WriteFile, APathThatNamesNoFileIsRefusedBeforeAnythingIsWritten) {
  const fs::path dir = testing::fresh_dir("cutrain_io_test", "no_file");
  EXPECT_NE(
      testing::error_of([] { write_file_atomic("", {}); }).find("an empty path names no file"),
      std::string::npos);
  const std::string slash = (dir / "out").string() + "/";
  const std::string e = testing::error_of([&] { write_file_atomic(slash, {}); });
  EXPECT_NE(e.find("'" + slash + "' names a directory, not a file"), std::string::npos) << e;
  EXPECT_TRUE(fs::is_empty(dir)) << "a temporary file was left";
}

TEST(WriteFile, WritesAPipeInPlace) {
  const fs::path dir = testing::fresh_dir("cutrain_io_test", "pipe");
  const fs::path fifo = dir / "out.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = testing::read_text(fifo); });
  write_file_atomic(fifo.string(), bytes_of("into the pipe"));
  reader.join();
  EXPECT_EQ(got, "into the pipe");
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the pipe was replaced";
}

TEST(WriteFile, OwnDescriptorsAreWrittenWhereTheyPoint) {
  EXPECT_EQ(own_descriptor("/dev/stdout"), 1);
  EXPECT_EQ(own_descriptor("/dev/stderr"), 2);
  EXPECT_EQ(own_descriptor("/dev/fd/7"), 7);
  EXPECT_EQ(own_descriptor("/proc/self/fd/12"), 12);
  for (const char* other : {"/dev/fd/", "/dev/fd/x", "/dev/fd/3x", "/dev/null", "/tmp/a", "x"})
    EXPECT_EQ(own_descriptor(other), -1) << other;
  // Links stop at an own descriptor (its "target" names a pipe or a terminal, not a path).
  if (fs::is_symlink("/dev/stdin")) {
    EXPECT_EQ(resolve_links("/dev/stdin"), "/proc/self/fd/0");
  }
  int ends[2];
  ASSERT_EQ(::pipe(ends), 0);
  write_file_atomic("/dev/fd/" + std::to_string(ends[1]), bytes_of("down the descriptor"));
  ::close(ends[1]);
  char buffer[64] = {};
  const ssize_t n = ::read(ends[0], buffer, sizeof(buffer));
  ::close(ends[0]);
  EXPECT_EQ(std::string(buffer, static_cast<std::size_t>(n > 0 ? n : 0)), "down the descriptor");
}

}  // namespace
}  // namespace cutrain::io
