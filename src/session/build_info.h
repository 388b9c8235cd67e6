// What framescope was built from: the project's version (CMake's project VERSION) and the git
// revision of the source tree, read at build time (cmake/build_info.cmake), so run.json names
// the code under test and `framescope --version` the binary.
#ifndef FRAMESCOPE_SESSION_BUILD_INFO_H_
#define FRAMESCOPE_SESSION_BUILD_INFO_H_

namespace fs {

const char* FramescopeVersion();  // "0.1.0"
// Short commit hash, "-dirty" when tracked files differed from it; "unknown" outside a git tree.
const char* FramescopeRevision();

}  // namespace fs

#endif  // FRAMESCOPE_SESSION_BUILD_INFO_H_
