// read_file on what is not a regular file (Note [reading pipes]): pipes are read to their end,
// a named pipe nobody writes and a device are refused instead of blocking.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <thread>
#include <vector>

#include "cutrain/data/readers.hpp"
#include "data_fixture.hpp"
#include "support/errors.hpp"

namespace cutrain::data {
namespace {

using testing::gzip_bytes;
using testing::temp_path;

// A fresh named pipe at `name` in the test's temporary directory.
std::string make_fifo(const std::string& name) {
  const std::string path = temp_path(name);
  std::filesystem::remove(path);
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
  return path;
}

// Opens the pipe for writing after `delay`, writes `bytes` (stopping if the reader has gone)
// and closes it.
std::thread writer(const std::string& path, std::vector<std::uint8_t> bytes,
                   std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
  return std::thread([path, bytes = std::move(bytes), delay] {
    std::this_thread::sleep_for(delay);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t r = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (r <= 0) break;
      done += static_cast<std::size_t>(r);
    }
    ::close(fd);
  });
}

// Bytes no two of whose 1 MiB chunks are alike, so a chunk read twice or dropped shows.
std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::uint8_t>((i * 131 + i / 4099) & 0xFF);
  return out;
}

TEST(ReadFile, ReadsAPipeToItsEndInflatingGzip) {
  // 2.5 MiB: several of read_file's chunks, the last one partial.
  const std::vector<std::uint8_t> bytes = pattern((5U << 20) / 2);
  const std::string fifo = make_fifo("bytes.fifo");
  std::thread w = writer(fifo, bytes);
  EXPECT_EQ(read_file(fifo), bytes);
  w.join();
  // A compressed stream through a pipe (bash's <(cat data.csv.gz)) is inflated as a file is.
  w = writer(fifo, gzip_bytes(bytes));
  EXPECT_EQ(read_file(fifo), bytes);
  w.join();
  // The CSV reader sees the same rows through a pipe as from the file.
  const std::string text = "a,b,label\n1,2,0\n3.5,-4,1\n";
  testing::write_text(temp_path("rows.csv"), text);
  w = writer(fifo, std::vector<std::uint8_t>(text.begin(), text.end()));
  const Dataset piped = read_csv(fifo, CsvOptions{});
  w.join();
  const Dataset plain = read_csv(temp_path("rows.csv"), CsvOptions{});
  EXPECT_EQ(piped.rows, 2);
  EXPECT_EQ(piped.x, plain.x);
  EXPECT_EQ(piped.labels, plain.labels);
}

TEST(ReadFile, WaitsBrieflyForAWriterThatOpensLate) {
  const std::vector<std::uint8_t> bytes = pattern(1000);
  const std::string fifo = make_fifo("late.fifo");
  std::thread w = writer(fifo, bytes, std::chrono::milliseconds(300));
  EXPECT_EQ(read_file(fifo), bytes);
  w.join();
}

TEST(ReadFile, RefusesANamedPipeNothingWritesInsteadOfBlocking) {
  const std::string fifo = make_fifo("silent.fifo");
  const auto start = std::chrono::steady_clock::now();
  const std::string e = testing::error_of([&] { read_file(fifo); });
  EXPECT_NE(e.find("silent.fifo' is a pipe that gave no data: nothing wrote to it within 5 s"),
            std::string::npos)
      << e;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  // A writer that connects and closes without a byte is an empty pipe, not a wait.
  std::thread w = writer(fifo, {});
  EXPECT_NE(testing::error_of([&] {
              read_file(fifo);
            }).find("is a pipe that gave no data (its writer sent none, or it was read already"),
            std::string::npos);
  w.join();
}

TEST(ReadFile, RefusesAPipeLongerThanTheCapAndDevices) {
  std::signal(SIGPIPE, SIG_IGN);  // the writer is left with bytes nobody reads
  const std::string fifo = make_fifo("long.fifo");
  std::thread w = writer(fifo, pattern(3U << 20));
  const std::string e = testing::error_of([&] { read_file(fifo, std::size_t{2} << 20); });
  EXPECT_NE(e.find("long.fifo' (a pipe) gave more than 2097152 bytes"), std::string::npos) << e;
  w.join();
  // /dev/zero never ends; a terminal waits on a person: neither is read.
  for (const char* device : {"/dev/zero", "/dev/null"}) {
    const std::string d = testing::error_of([&] { read_file(device); });
    EXPECT_NE(d.find(std::string("'") + device + "' is a device or socket, not a file or a pipe"),
              std::string::npos)
        << d;
  }
}

}  // namespace
}  // namespace cutrain::data
