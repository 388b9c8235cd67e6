#include "src/session/build_info.h"

#include "framescope_build_info.h"  // Generated under the build folder.

namespace fs {

const char* FramescopeVersion() { return FRAMESCOPE_VERSION; }
const char* FramescopeRevision() { return FRAMESCOPE_REVISION; }

}  // namespace fs
