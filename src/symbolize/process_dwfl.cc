#include "src/symbolize/process_dwfl.h"

#include <elfutils/libdwfl.h>

#include <cerrno>
#include <cstring>

namespace fs::profile {

void DwflDeleter::operator()(::Dwfl* dwfl) const { dwfl_end(dwfl); }

namespace {

// dwfl_linux_proc_report between dwfl_report_begin(_add) and dwfl_report_end.
Status ReportModules(::Dwfl* dwfl, pid_t pid, const std::string& where) {
  int rc = dwfl_linux_proc_report(dwfl, pid);
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
  return Status();
}

}  // namespace

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
  RETURN_IF_ERROR(ReportModules(dwfl.get(), pid, where));
  if (dwfl_report_end(dwfl.get(), nullptr, nullptr) != 0) {
    return Err(where + ": dwfl_report_end: " + dwfl_errmsg(-1));
  }
  return dwfl;
}

Status ReportNewModules(::Dwfl* dwfl, pid_t pid, const std::string& where) {
  // begin_add, unlike begin, removes no module left unreported (unmapped since): the Symbolizer
  // keys its symbol indexes by Dwfl_Module pointer. A module reported again with the same name
  // and range is the same Dwfl_Module.
  dwfl_report_begin_add(dwfl);
  Status reported = ReportModules(dwfl, pid, where);
  // Ends the report even after an error: the modules reported so far stay usable.
  if (dwfl_report_end(dwfl, nullptr, nullptr) != 0 && reported.ok()) {
    return Err(where + ": dwfl_report_end: " + dwfl_errmsg(-1));
  }
  return reported;
}

}  // namespace fs::profile
