// Helpers for end-to-end tests that drive the real binaries.
#ifndef FRAMESCOPE_TESTS_INTEGRATION_TEST_UTIL_H_
#define FRAMESCOPE_TESTS_INTEGRATION_TEST_UTIL_H_

#include <string>
#include <utility>
#include <vector>

namespace fs::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

// Runs a shell command line, capturing its output.
CommandResult RunShell(const std::string& command);
// Directory holding the framescope binaries (beside the test binary).
std::string BinDir();
// A fresh temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};
// Brings the system in `state_dir` down and purges its data however a test ends (an
// ASSERT that returns early must not leave services running).
class SystemGuard {
 public:
  explicit SystemGuard(std::string state_dir) : state_dir_(std::move(state_dir)) {}
  ~SystemGuard();

 private:
  std::string state_dir_;
};
// Pids of live processes whose command line contains `needle`.
std::vector<int> PidsMatching(const std::string& needle);

}  // namespace fs::testing

#endif  // FRAMESCOPE_TESTS_INTEGRATION_TEST_UTIL_H_
