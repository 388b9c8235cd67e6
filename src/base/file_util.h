#ifndef FRAMESCOPE_BASE_FILE_UTIL_H_
#define FRAMESCOPE_BASE_FILE_UTIL_H_

#include <string>

#include "src/base/status.h"

namespace fs {

StatusOr<std::string> ReadFile(const std::string& path);
// Writes to `path.tmp.<pid>` then renames over `path`: readers never see a partial file.
Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode = 0644);
// mkdir -p.
Status MakeDirs(const std::string& path);
bool PathExists(const std::string& path);
// Directory holding the running executable (from /proc/self/exe).
std::string SelfExeDir();

}  // namespace fs

#endif  // FRAMESCOPE_BASE_FILE_UTIL_H_
