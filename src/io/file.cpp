// Writing files whole (cutrain/io/file.hpp).
#include "cutrain/io/file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "cutrain/error.hpp"
#include "src/io/descriptor.hpp"

namespace cutrain::io {

int own_descriptor(const std::string& path) {
  if (path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (const std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (!path.starts_with(prefix) || path.size() == prefix.size()) continue;
    int fd = 0;
    const char* end = path.data() + path.size();
    const auto [at, ec] = std::from_chars(path.data() + prefix.size(), end, fd);
    return ec == std::errc() && at == end ? fd : -1;
  }
  return -1;
}

std::string resolve_links(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  std::error_code ec;
  // This process's own descriptors are where a path stops (/dev/stdin -> /proc/self/fd/0, whose
  // own "link" names a pipe or terminal, not a path).
  for (int hops = 0; own_descriptor(p.string()) < 0 && fs::is_symlink(p, ec); ++hops) {
    CUTRAIN_CHECK(hops < 40, "'", path, "': too many levels of symbolic links");
    const fs::path target = fs::read_symlink(p, ec);
    CUTRAIN_CHECK(!ec, "cannot follow the link '", p.string(), "': ", ec.message());
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  return p.string();
}

namespace {

// Note [partial files of killed runs]: a process killed while it writes a file (SIGKILL, the
// OOM killer, a SIGTERM outside the trainer's handler, a power loss) leaves its temporary
// `.NAME.tmp.PID` beside NAME - the whole file's size, hidden, and one more for every requeued
// run killed the same way. Before writing NAME, those whose process is gone (kill(PID, 0): no
// such process on this host) and that nothing has written for kStaleSeconds are removed. The
// age keeps a writer on another host of a shared filesystem (another PID space) safe: its file
// grows, and so changes, until the rename.
constexpr double kStaleSeconds = 60;

void remove_partial_files(const std::filesystem::path& dir, const std::string& name) {
  namespace fs = std::filesystem;
  std::string prefix = ".";  // append: see below (-Wrestrict)
  prefix.append(name).append(".tmp.");
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return;
  const auto now = fs::file_time_type::clock::now();
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return;
    const std::string entry = it->path().filename().string();
    if (!entry.starts_with(prefix)) continue;
    long long pid = 0;
    const char* first = entry.data() + prefix.size();
    const char* last = entry.data() + entry.size();
    const auto [at, parse] = std::from_chars(first, last, pid);
    if (parse != std::errc() || at != last || first == last || pid <= 0 || pid == ::getpid() ||
        pid > INT32_MAX)
      continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // it may be writing
    std::error_code time_ec;
    const auto written = fs::last_write_time(it->path(), time_ec);
    if (time_ec || std::chrono::duration<double>(now - written).count() < kStaleSeconds) continue;
    if (!it->is_regular_file(time_ec)) continue;
    ::unlink(it->path().c_str());
  }
}

}  // namespace

// Note [writing over links and devices]: the temporary file renamed over the target replaces
// whatever directory entry the path names - a symlink itself, or a device node (as root,
// /dev/null would become a regular file, and /dev/stdout, a link into /proc, one too). So this
// process's own descriptors (/dev/stdout, /dev/fd/N) are written where they point, a link is
// followed and its target replaced (the link stays), and a device or pipe is written in place.
void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes) {
  // Before any temporary file: "" or "out/" names no file to rename it to.
  CUTRAIN_CHECK(!path.empty(), "an empty path names no file to write");
  CUTRAIN_CHECK(path.back() != '/', "'", path, "' names a directory, not a file");
  if (const int fd = own_descriptor(path); fd >= 0) {
    std::fflush(nullptr);  // after what stdio holds for it
    CUTRAIN_CHECK(write_all(fd, bytes), "writing '", path, "' failed: ", std::strerror(errno));
    return;
  }
  if (const std::string real = resolve_links(path); real != path) {  // own descriptors too
    write_file_atomic(real, bytes);
    return;
  }
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;  // its mode, kept when it is replaced
  if (exists && !S_ISREG(st.st_mode)) {
    CUTRAIN_CHECK(!S_ISDIR(st.st_mode), "'", path, "' is a directory, not a file");
    Descriptor file = open_in_place(path);  // a named pipe waits for its reader, briefly
    const bool written = write_all(file.fd(), bytes);
    const int err = errno;
    CUTRAIN_CHECK(file.close() && written, "writing '", path,
                  "' failed: ", std::strerror(written ? errno : err));
    return;
  }
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  remove_partial_files(dir, target.filename().string());  // Note [partial files of killed runs]
  // Built with append: GCC 12 warns falsely (-Wrestrict) on the "." + string form.
  std::string tmp_name = ".";
  tmp_name.append(target.filename().string()).append(".tmp.").append(std::to_string(::getpid()));
  const std::string tmp = (dir / tmp_name).string();
  Descriptor file(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  CUTRAIN_CHECK(file.fd() >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  // A file replaced keeps its permissions (a report made group-only stayed so; the new one was
  // world-readable by the umask) and, where this process may set them, its owner and group.
  if (exists) {
    // fchown fails unless this process owns the file or is root: the file becomes this user's
    // then, as any replacement makes it.
    [[maybe_unused]] const int owner = ::fchown(file.fd(), st.st_uid, st.st_gid);
    [[maybe_unused]] const int mode = ::fchmod(file.fd(), st.st_mode & 07777);
  }
  if (!write_all(file.fd(), bytes)) {
    const int err = errno;
    file.close();
    ::unlink(tmp.c_str());
    CUTRAIN_FAIL("writing '", tmp, "' failed: ", std::strerror(err));
  }
  if (::fsync(file.fd()) != 0 || !file.close()) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CUTRAIN_FAIL("flushing '", tmp, "' failed: ", std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CUTRAIN_FAIL("renaming '", tmp, "' to '", path, "' failed: ", std::strerror(err));
  }
  // The rename is durable only once the directory entry is.
  const Descriptor directory(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory.fd() >= 0) ::fsync(directory.fd());
}

}  // namespace cutrain::io
