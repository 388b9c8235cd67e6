#include "src/base/output.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "src/base/file_util.h"

namespace fs {
namespace {

bool IsDevNull(const std::string& path) {
  struct stat st {};
  return path == "/dev/null" && lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
         major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

// What makes two paths the same file: the inode when the file exists, else the resolved folder
// plus the name.
std::string Identity(const std::string& path) {
  if (path == "-") return "-";
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    return "inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  char resolved[PATH_MAX];
  const std::string dir = Dirname(path);
  const std::string name =
      path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (realpath(dir.c_str(), resolved) == nullptr) return "path:" + path;
  return "path:" + std::string(resolved) + "/" + name;
}

Status WriteStdout(const std::string& contents) {
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = write(STDOUT_FILENO, contents.data() + off, contents.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(std::string("cannot write to standard output: ") + strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string OutputName(const std::string& path) { return path == "-" ? "standard output" : path; }

OutputKind KindOfOutput(const std::string& path) {
  if (path == "-") return OutputKind::kStdout;
  if (IsDevNull(path)) return OutputKind::kNull;
  return OutputKind::kFile;
}

Status CheckFolderWritable(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    return Err("folder " + dir + " does not exist (" + strerror(errno) + "): create it first");
  }
  if (!S_ISDIR(st.st_mode)) return Err(dir + " is not a folder");
  std::string probe = dir + "/.framescope-probe-XXXXXX";
  int fd = mkstemp(probe.data());
  if (fd < 0) return Err("cannot create a file in " + dir + ": " + strerror(errno));
  close(fd);
  unlink(probe.c_str());
  return Status::Ok();
}

Status CheckOutputPath(const std::string& path) {
  if (path.empty()) return Err("an output path is empty");
  if (KindOfOutput(path) != OutputKind::kFile) return Status::Ok();
  if (path.back() == '/') return Err("output " + path + " names a folder, not a file");
  if (Status st = CheckRegularOrAbsent(path); !st.ok()) {
    return Err("output " + st.message() +
               " (outputs are regular files: choose another path, - for standard output or "
               "/dev/null to discard)");
  }
  return CheckFolderWritable(Dirname(path)).Annotate("output " + path);
}

Status CheckOutputs(const std::vector<std::string>& outputs,
                    const std::vector<std::string>& inputs) {
  std::vector<std::pair<std::string, std::string>> seen;  // identity, path
  for (const std::string& in : inputs) {
    if (!PathExists(in)) return Err(in + ": no such file");
    seen.emplace_back(Identity(in), in);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string& out = outputs[i];
    RETURN_IF_ERROR(CheckOutputPath(out));
    if (KindOfOutput(out) == OutputKind::kNull) continue;  // Any number of outputs may be sunk.
    const std::string id = Identity(out);
    for (size_t j = 0; j < seen.size(); ++j) {
      if (seen[j].first != id) continue;
      const bool is_input = j < inputs.size();
      return Err("output " + out + " is the same file as " + (is_input ? "input " : "output ") +
                 seen[j].second + ": refusing to overwrite it (choose another output path)");
    }
    seen.emplace_back(id, out);
  }
  return Status::Ok();
}

Status WriteOutput(const std::string& path, const std::string& contents) {
  switch (KindOfOutput(path)) {
    case OutputKind::kStdout:
      return WriteStdout(contents);
    case OutputKind::kNull:
      return Status::Ok();
    case OutputKind::kFile:
      break;
  }
  return WriteFileAtomic(path, contents);
}

}  // namespace fs
