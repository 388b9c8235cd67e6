#include "src/cli/cli_util.h"

namespace fs {

std::vector<std::string> ExpandShortOut(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (auto& a : args) {
    if (a == "--") break;
    if (a == "-o") a = "--out";
  }
  return args;
}

std::string SwapExtension(const std::string& path, const std::string& ext,
                          const std::string& new_ext) {
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    return path.substr(0, path.size() - ext.size()) + new_ext;
  }
  return path + new_ext;
}

}  // namespace fs
