#include "tests/integration/test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "src/base/file_util.h"
#include "src/system/process.h"

namespace fs::testing {

CommandResult RunShell(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string BinDir() { return SelfExeDir(); }

TempDir::TempDir() {
  char tmpl[] = "/tmp/framescope-it-XXXXXX";
  path_ = mkdtemp(tmpl);
  // Searchable by others: a private PostgreSQL started as the `postgres` user keeps its
  // cluster inside (without this, it would fall back to /var/lib/framescope).
  chmod(path_.c_str(), 0711);
}

SystemGuard::~SystemGuard() {
  RunShell(BinDir() + "/framescope down --purge --state-dir " + state_dir_);
}

TempDir::~TempDir() {
  if (!path_.empty() && getenv("FRAMESCOPE_KEEP_TMP") == nullptr) {
    RunShell("rm -rf '" + path_ + "'");
  }
}

std::vector<int> PidsMatching(const std::string& needle) {
  std::vector<int> out;
  for (pid_t pid : FindProcesses(
           [&needle](pid_t p) { return ProcessCmdline(p).find(needle) != std::string::npos; })) {
    out.push_back(static_cast<int>(pid));
  }
  return out;
}

}  // namespace fs::testing
