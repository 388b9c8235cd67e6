// The I/O around a child process that framescope runs and waits for (an alert command, a
// scheduled profile, crontab): its stdin from a file, and its output copied while it runs.
// Kept here, beside nothing else process-related, because both regression (alerts) and session
// (schedule) need it and neither may include the other or src/system.
#ifndef FRAMESCOPE_BASE_CHILD_IO_H_
#define FRAMESCOPE_BASE_CHILD_IO_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

#include "src/base/status.h"

namespace fs {

// write(2) of all of `data` to a file or pipe, retrying short writes and EINTR (net.h's WriteAll
// is send(2), for sockets only); false on an error.
bool WriteToFd(int fd, std::string_view data);

// An anonymous file (memfd, close-on-exec) holding `text` at offset 0: a child's stdin that it
// reads at its own pace, so we never block writing to a pipe it does not read.
StatusOr<int> TextFile(std::string_view text);

// Copies what the child `pid` writes on `out_fd` (our read end of its output pipe, made
// non-blocking here: the child's end is another open file and keeps blocking) to `sink` until
// the child exits, then what is left without waiting for EOF: a process it left in the
// background keeps the pipe open but must not keep us. At most a pipe's worth is copied per
// wake-up, so endless output cannot hold us past the deadline either. Past `deadline` the
// child's process group is killed. Returns the wait status, or -1 when it had to be killed.
int CopyOutputUntilExit(pid_t pid, int out_fd, const std::function<void(std::string_view)>& sink,
                        std::optional<std::chrono::steady_clock::time_point> deadline);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_CHILD_IO_H_
