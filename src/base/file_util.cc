#include "src/base/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

namespace fs {

namespace {

const char* FileTypeName(mode_t mode) {
  if (S_ISLNK(mode)) return "a symlink";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

}  // namespace

StatusOr<std::string> ReadFile(const std::string& path) {
  // Regular files only: a device (/dev/zero) would be read until memory runs out and a FIFO
  // would block forever. O_NONBLOCK so a FIFO planted after the stat() cannot block the open.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Err("cannot read " + path + ": " + strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    return Err("cannot read " + path + ": it is " + FileTypeName(st.st_mode) +
               ", not a regular file");
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Err("cannot read " + path + ": " + strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Err("cannot read " + path + ": not a regular file");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return Err("cannot read " + path + ": " + strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

namespace {

Status WriteAllTo(int fd, const std::string& contents, const std::string& name) {
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = write(fd, contents.data() + off, contents.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err("cannot write " + name + ": " + strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// A replaced file keeps its owner (as root) and gets no more permission than it had: rewriting
// a user's 0600 document must not leave it world-readable or owned by root.
void KeepOwnerAndMode(int fd, const std::string& path, int mode) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  fchmod(fd, st.st_mode & static_cast<mode_t>(mode) & 07777);
  // Not fatal if refused (a filesystem without owners): the contents matter more.
  if (geteuid() == 0) (void)!fchown(fd, st.st_uid, st.st_gid);
}

}  // namespace

Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  // O_EXCL|O_NOFOLLOW: a planted file or symlink at the temp name is never written through.
  // A stale temp file of ours (a crash between open and rename) is removed first.
  unlink(tmp.c_str());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Err("cannot write " + tmp + ": " + strerror(errno));
  KeepOwnerAndMode(fd, path, mode);
  Status st = WriteAllTo(fd, contents, tmp);
  if (st.ok() && fsync(fd) != 0) st = Err("cannot flush " + tmp + ": " + strerror(errno));
  if (close(fd) != 0 && st.ok()) st = Err("cannot close " + tmp + ": " + strerror(errno));
  // Checked last, just before the rename: whatever is at `path` now is what gets replaced.
  if (st.ok()) st = CheckRegularOrAbsent(path);
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    st = Err("cannot rename " + tmp + " to " + path + ": " + strerror(errno));
  }
  if (!st.ok()) unlink(tmp.c_str());
  return st;
}

namespace {

// Opens a regular file only: a symlink is refused (O_NOFOLLOW), a FIFO does not block
// (O_NONBLOCK), a device or folder is refused after the open.
StatusOr<int> OpenRegularFile(const std::string& path, int flags, mode_t mode = 0) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
  if (fd < 0) {
    return Err(errno == ELOOP ? std::string("it is a symlink (refused)") : strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Err("not a regular file (refused)");
  }
  return fd;
}

}  // namespace

StatusOr<std::string> ReadFileRange(const std::string& path, uint64_t offset, size_t length) {
  ASSIGN_OR_RETURN(const int fd, OpenRegularFile(path, O_RDONLY));
  std::string out(length, '\0');
  size_t got = 0;
  while (got < length) {
    ssize_t n = pread(fd, out.data() + got, length - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close(fd);
      return Err(strerror(e));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  out.resize(got);
  return out;
}

StatusOr<int> OpenRegularFileForUpdate(const std::string& path, int extra_flags) {
  return OpenRegularFile(path, O_RDWR | O_CREAT | extra_flags, 0644);
}

Status CheckRegularOrAbsent(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Err("cannot use " + path + ": " + strerror(errno));
  }
  if (S_ISREG(st.st_mode)) return Status::Ok();
  return Err(path + " exists and is " + FileTypeName(st.st_mode) +
             ", not a regular file: refusing to replace it");
}

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::Ok();
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return Err("cannot create directory " + partial + ": " + strerror(errno));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Err(path + " exists and is not a directory");
  }
  return Status::Ok();
}

bool PathExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

StatusOr<std::string> CanonicalPath(const std::string& path) {
  if (path.empty()) return Err("an empty path");
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (!ec) p = std::filesystem::weakly_canonical(p, ec);
  if (ec) return Err("cannot resolve " + path + ": " + ec.message());
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string SelfExe() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string SelfExeDir() {
  const std::string p = SelfExe();
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

}  // namespace fs
