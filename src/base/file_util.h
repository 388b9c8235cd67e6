#ifndef FRAMESCOPE_BASE_FILE_UTIL_H_
#define FRAMESCOPE_BASE_FILE_UTIL_H_

#include <cstdint>
#include <string>

#include "src/base/status.h"

namespace fs {

// Regular files only (a device or FIFO is an error, never read or waited on).
StatusOr<std::string> ReadFile(const std::string& path);
// Up to `length` bytes of a regular file from `offset` (pread: fewer at its end). A symlink
// (O_NOFOLLOW), device, FIFO or folder is an error, never read or waited on.
StatusOr<std::string> ReadFileRange(const std::string& path, uint64_t offset, size_t length);
// Writes to `path.tmp.<pid>` then renames over `path`: readers never see a partial file.
// `mode` is the most a file gets: a new one gets mode (less the umask), an existing one keeps
// its owner and at most its own permissions (hard links to it are not followed: the name now
// points at the new file). Only a regular file is ever replaced: a symlink, folder, device, FIFO or
// socket at `path` is an error (checked just before the rename) and is left as it was.
Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode = 0644);
// Opens `path` read-write, creating it (0644) if absent, for files updated in place (append-only
// logs, lock files): only a regular file is opened; a symlink is refused (O_NOFOLLOW), a FIFO
// fails fast instead of waiting (O_NONBLOCK), a device or folder is refused. `extra_flags` are
// added (e.g. O_APPEND). The caller owns the returned fd.
StatusOr<int> OpenRegularFileForUpdate(const std::string& path, int extra_flags = 0);
// OK when nothing is at `path` (lstat: a symlink is not followed) or a regular file is.
Status CheckRegularOrAbsent(const std::string& path);
// mkdir -p.
Status MakeDirs(const std::string& path);
bool PathExists(const std::string& path);
// The absolute path with symbolic links, "." and ".." resolved as far as it exists
// (weakly_canonical) and no trailing slash: one name per file or folder however it is spelled,
// the same before and after it is created.
StatusOr<std::string> CanonicalPath(const std::string& path);
// The running executable (/proc/self/exe); "" when it cannot be read.
std::string SelfExe();
// Directory holding the running executable (from /proc/self/exe).
std::string SelfExeDir();

}  // namespace fs

#endif  // FRAMESCOPE_BASE_FILE_UTIL_H_
