#include "src/symbolize/process_dwfl.h"

#include <elfutils/libdwfl.h>

#include <cerrno>
#include <cstring>

namespace fs::profile {

void DwflDeleter::operator()(::Dwfl* dwfl) const { dwfl_end(dwfl); }

StatusOr<DwflPtr> ReportProcessModules(pid_t pid, const std::string& where) {
  // Static: libdwfl keeps a pointer to the callbacks for the Dwfl's lifetime.
  static char* debuginfo_path = nullptr;
  static const Dwfl_Callbacks kCallbacks = {
      .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = nullptr,
      .debuginfo_path = &debuginfo_path,
  };
  DwflPtr dwfl(dwfl_begin(&kCallbacks));
  if (dwfl == nullptr) return Err(where + ": dwfl_begin: " + dwfl_errmsg(-1));
  dwfl_report_begin(dwfl.get());
  int rc = dwfl_linux_proc_report(dwfl.get(), pid);
  if (rc != 0) {
    if (rc == ENOENT || rc == ESRCH) {
      return Err(where + ": the process exited while its mappings were read");
    }
    if (rc == EACCES || rc == EPERM) {
      return Err(where +
                 ": permission denied reading its mappings; run framescope as the same user as "
                 "the process, or as root / with CAP_SYS_PTRACE");
    }
    std::string why = rc > 0 ? strerror(rc) : dwfl_errmsg(-1);
    return Err(where + ": reading /proc/" + std::to_string(pid) + "/maps: " + why);
  }
  if (dwfl_report_end(dwfl.get(), nullptr, nullptr) != 0) {
    return Err(where + ": dwfl_report_end: " + dwfl_errmsg(-1));
  }
  return dwfl;
}

}  // namespace fs::profile
