// Writing to pipes (Note [writing to pipes], src/io/descriptor.cpp): a named pipe nobody reads is
// refused after a bounded wait instead of blocking forever, one whose reader comes within it is
// written; a reader that left is an error (EPIPE), not SIGPIPE ending the process; StreamFile
// truncates, appends, and reports a full disk.
#include "src/io/descriptor.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <thread>

#include "cutrain/io/file.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain::io {
namespace {

namespace fs = std::filesystem;

std::span<const std::uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

bool sigpipe_pending() {
  sigset_t pending;
  sigemptyset(&pending);
  return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

bool sigpipe_blocked() {
  sigset_t mask;
  sigemptyset(&mask);
  return pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0 && sigismember(&mask, SIGPIPE) == 1;
}

TEST(WritePipe, ANamedPipeNobodyReadsIsRefusedAfterTheWait) {
  const fs::path fifo = testing::fresh_dir("cutrain_descriptor_test", "unread") / "out.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  const std::string e =
      testing::error_of([&] { write_file_atomic(fifo.string(), bytes_of("nobody reads this")); });
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Built with append: GCC 12 warns falsely (-Wrestrict) on the "'" + string form.
  const std::string want =
      std::string(1, '\'').append(fifo.string()).append("' is a pipe that no process reads");
  EXPECT_NE(e.find(want), std::string::npos) << e;
  EXPECT_GE(waited, 0.9 * kPipeWaitMs / 1000.0);
  EXPECT_LT(waited, 3.0 * kPipeWaitMs / 1000.0);
  EXPECT_TRUE(fs::is_fifo(fifo)) << "the pipe was replaced";
}

TEST(WritePipe, AReaderThatComesWithinTheWaitGetsTheBytes) {
  const fs::path fifo = testing::fresh_dir("cutrain_descriptor_test", "late") / "out.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    got = testing::read_text(fifo);
  });
  write_file_atomic(fifo.string(), bytes_of("for a late reader"));
  reader.join();
  EXPECT_EQ(got, "for a late reader");
}

TEST(WritePipe, AReaderThatLeftIsAnErrorNotSigpipe) {
  // SIGPIPE's default action ends the process: reaching the checks below is the first one.
  ASSERT_FALSE(sigpipe_blocked());
  int ends[2];
  ASSERT_EQ(::pipe(ends), 0);
  ::close(ends[0]);  // the reader leaves
  const std::string payload(1 << 16, 'x');
  errno = 0;
  EXPECT_FALSE(write_all(ends[1], bytes_of(payload)));
  EXPECT_EQ(errno, EPIPE);
  const std::string descriptor = "/dev/fd/" + std::to_string(ends[1]);
  std::string e = testing::error_of([&] { write_file_atomic(descriptor, bytes_of(payload)); });
  EXPECT_NE(e.find("writing '" + descriptor + "' failed: " + std::strerror(EPIPE)),
            std::string::npos)
      << e;
  e = testing::error_of([&] {
    StreamFile out(descriptor, /*append=*/false, "the metrics file");
    out.write(payload);
  });
  EXPECT_NE(e.find("cannot write the metrics file '" + descriptor + "'"), std::string::npos) << e;
  ::close(ends[1]);
  // The signal each write raised was discarded, and the thread's mask is as it was.
  EXPECT_FALSE(sigpipe_pending());
  EXPECT_FALSE(sigpipe_blocked());
}

TEST(StreamFile, TruncatesOrAppendsAndWritesEachPieceAtOnce) {
  const fs::path file = testing::fresh_dir("cutrain_descriptor_test", "stream") / "m.csv";
  std::ofstream(file) << "an older run\n";
  {
    StreamFile out(file.string(), /*append=*/false);
    out.write("epoch 1\n");
    EXPECT_EQ(testing::read_text(file), "epoch 1\n");  // no buffer: a killed run keeps the line
  }
  {
    StreamFile out(file.string(), /*append=*/true);
    out.write("epoch 2\n");
  }
  EXPECT_EQ(testing::read_text(file), "epoch 1\nepoch 2\n");
  StreamFile nothing;
  EXPECT_FALSE(nothing.is_open());
  nothing.write("dropped");  // writes nothing, throws nothing
  const std::string e = testing::error_of([&] {
    StreamFile(testing::fresh_dir("cutrain_descriptor_test", "stream_dir").string(), false,
               "the metrics file");
  });
  EXPECT_NE(e.find("is a directory, not a file"), std::string::npos) << e;
}

TEST(StreamFile, AFullDiskIsAnErrorNamingTheFile) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full here";
  const std::string e = testing::error_of([] {
    StreamFile out("/dev/full", /*append=*/false, "the metrics file");
    out.write("a line the disk has no room for\n");
  });
  EXPECT_NE(
      e.find(std::string("cannot write the metrics file '/dev/full': ") + std::strerror(ENOSPC)),
      std::string::npos)
      << e;
}

}  // namespace
}  // namespace cutrain::io
