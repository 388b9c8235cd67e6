// A command that a subcommand starts in order to profile it (`record -- CMD`,
// `memory -- CMD`): started (optionally held before its exec until the profiler is attached,
// so its first instruction is observed), and at the end stopped with every process it started
// or left running.
#ifndef FRAMESCOPE_CLI_COMMAND_H_
#define FRAMESCOPE_CLI_COMMAND_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

struct CommandOptions {
  bool hold_until_release = false;  // Waits before its exec until Release().
  bool stdout_to_stderr = false;    // Keeps our standard output for JSON or a profile.
  // "KEY=value" added to (or replacing in) the child's environment only: ours stays as it was.
  std::vector<std::string> extra_env = {};
};

class ChildCommand {
 public:
  // Forks; without hold_until_release, returns once the exec happened or failed (an error).
  static StatusOr<ChildCommand> Start(const std::vector<std::string>& argv,
                                      const CommandOptions& options);
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // With hold_until_release: lets it exec and waits for the exec (or its failure: an error),
  // so a symbolizer made afterwards reads the command's modules rather than ours.
  Status Release();
  // A command still running is stopped with its process tree (SIGTERM, SIGKILL after 5 s) or,
  // with keep_running, left running. Returns one line saying what happened to it.
  std::string End(bool keep_running);

 private:
  pid_t pid_ = -1;
  int go_ = -1;     // Write end of the hold pipe (-1 once released).
  int error_ = -1;  // Read end of the exec-error pipe (CLOEXEC in the child).
  std::string name_;
  bool reaped_ = false;  // Its exec failed and it was reaped: status_ is its wait status.
  int status_ = 0;
};

}  // namespace fs

#endif  // FRAMESCOPE_CLI_COMMAND_H_
