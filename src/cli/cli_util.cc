#include "src/cli/cli_util.h"

namespace fs {

std::string SwapExtension(const std::string& path, const std::string& ext,
                          const std::string& new_ext) {
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    return path.substr(0, path.size() - ext.size()) + new_ext;
  }
  return path + new_ext;
}

}  // namespace fs
