// Small helpers shared by the subcommands' mains.
#ifndef FRAMESCOPE_CLI_CLI_UTIL_H_
#define FRAMESCOPE_CLI_CLI_UTIL_H_

#include <string>

namespace fs {

// "a/b.prof" -> "a/b.html" for ext ".prof" -> ".html"; a path without `ext` gets `new_ext`
// appended.
std::string SwapExtension(const std::string& path, const std::string& ext,
                          const std::string& new_ext);

}  // namespace fs

#endif  // FRAMESCOPE_CLI_CLI_UTIL_H_
