// A libdwfl session over the ELF modules a live process has mapped: what the Symbolizer (module
// lookup, build-ids) and the Unwinder (CFI, memory reads) each start from.
#ifndef FRAMESCOPE_SYMBOLIZE_PROCESS_DWFL_H_
#define FRAMESCOPE_SYMBOLIZE_PROCESS_DWFL_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "src/base/status.h"

struct Dwfl;

namespace fs::profile {

struct DwflDeleter {
  void operator()(::Dwfl* dwfl) const;
};
using DwflPtr = std::unique_ptr<::Dwfl, DwflDeleter>;

// dwfl_linux_proc_report of `pid` (its /proc/<pid>/maps), reporting finished. Errors start with
// `where` and say whether the process exited or permission was denied (with the fix).
StatusOr<DwflPtr> ReportProcessModules(pid_t pid, const std::string& where);

// Reports the modules `pid` maps now to `dwfl` (made by ReportProcessModules) in addition to
// those it has: modules already reported are kept, so Dwfl_Module pointers stay valid.
Status ReportNewModules(::Dwfl* dwfl, pid_t pid, const std::string& where);

}  // namespace fs::profile

#endif  // FRAMESCOPE_SYMBOLIZE_PROCESS_DWFL_H_
