// Tests only: runs a helper program that reports addresses as lines "<key> 0x<hex> [<int>...]"
// on stdout and stops at a marker line ("ready"), so a test can symbolize a live process whose
// truth it knows. Used by symbolizer_test and recorder_test.
#ifndef FRAMESCOPE_SYMBOLIZE_TEST_PROGRAM_H_
#define FRAMESCOPE_SYMBOLIZE_TEST_PROGRAM_H_

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace fs::profile {

class TestProgram {
 public:
  // Starts `path args...` with pipes on its stdin and stdout, and reads up to "ready".
  explicit TestProgram(const std::string& path, const std::vector<std::string>& args = {});
  ~TestProgram();  // SIGKILL, reaped.
  TestProgram(const TestProgram&) = delete;
  TestProgram& operator=(const TestProgram&) = delete;

  // True once the program printed "ready" (false if it could not start or died first).
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  // Writes `line` and a newline to the program's stdin, then reads its reply up to `marker`.
  bool Ask(const std::string& line, const std::string& marker);
  // The i-th value printed for `key` (0: the hex address); 0 if absent.
  uint64_t Value(const std::string& key, size_t i = 0) const;

 private:
  bool ReadUntil(const std::string& marker);

  pid_t pid_ = -1;
  int to_child_ = -1;
  FILE* from_child_ = nullptr;
  bool ready_ = false;
  std::map<std::string, std::vector<uint64_t>> values_;
};

}  // namespace fs::profile

#endif  // FRAMESCOPE_SYMBOLIZE_TEST_PROGRAM_H_
