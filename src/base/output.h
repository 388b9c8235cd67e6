// Where a command's results go: every user-named output (record -o/--folded, flamegraph -o,
// diff -o, profile's OUT files and --baseline) is checked and written through here, so every
// command follows the same rules:
//   - "-" is standard output (at most one output per command may be "-");
//   - /dev/null (the character device 1:3 itself, not a link to it) is a sink: nothing is
//     written, and the device is left alone;
//   - an existing output must be a regular file, which is replaced atomically (temp file in the
//     same folder, fsync, rename); a symlink, folder, device, FIFO or socket is refused, never
//     followed or replaced;
//   - a new output's folder must exist and accept a new file (a real create, not access(): root
//     passes access() on a read-only filesystem).
// CheckOutputs runs before any work, so a bad path costs nothing; it also refuses an output that
// is the same file as an input or as another output.
#ifndef FRAMESCOPE_BASE_OUTPUT_H_
#define FRAMESCOPE_BASE_OUTPUT_H_

#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

enum class OutputKind { kFile, kStdout, kNull };

OutputKind KindOfOutput(const std::string& path);

// One output path, before any work: see the rules above.
Status CheckOutputPath(const std::string& path);
// Every input exists; every output checked, then: no output is an input (same inode, or the same
// path once its folder is resolved) and no two outputs are the same file.
Status CheckOutputs(const std::vector<std::string>& outputs,
                    const std::vector<std::string>& inputs = {});
// A folder that must exist and accept new files.
Status CheckFolderWritable(const std::string& dir);
// Writes `contents` to `path` by the rules above. The file checks are repeated just before the
// rename, so a special file planted after CheckOutputs is still not replaced.
Status WriteOutput(const std::string& path, const std::string& contents);
// For messages: "standard output" for "-", else the path.
std::string OutputName(const std::string& path);
// "a/b/c.txt" -> "a/b"; "c.txt" -> "."; "/c" -> "/".
std::string Dirname(const std::string& path);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_OUTPUT_H_
