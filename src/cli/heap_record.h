// `framescope record --heap -- CMD`: runs one command under libframescope_heap.so and writes
// its heap profile (pprof: alloc_objects, alloc_space, inuse_objects, inuse_space) and the
// in-use stacks as folded text, instead of a CPU profile.
#ifndef FRAMESCOPE_CLI_HEAP_RECORD_H_
#define FRAMESCOPE_CLI_HEAP_RECORD_H_

#include <atomic>
#include <string>
#include <vector>

namespace fs {

struct HeapRecordOptions {
  std::vector<std::string> command;
  double duration_s = 10;  // 0: until the command exits (or Ctrl-C)
  bool keep_running = false;
  std::string out, folded;
  std::atomic<bool>* stop = nullptr;  // set by Ctrl-C: the profile so far is written
};

// Returns the exit code: 0 ok, 1 failure (the command could not run, nothing sampled, an
// output not written), 130 interrupted (written).
int RecordHeapProfile(const HeapRecordOptions& options);

}  // namespace fs

#endif  // FRAMESCOPE_CLI_HEAP_RECORD_H_
