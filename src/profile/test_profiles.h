// Test-only: profiles written as folded stacks, so a test states its input the way a person
// reads a flame graph. Header-only; used by the call tree and flame graph tests.
#ifndef FRAMESCOPE_PROFILE_TEST_PROFILES_H_
#define FRAMESCOPE_PROFILE_TEST_PROFILES_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "src/profile/profile.h"

namespace fs::profile {

// One pprof Sample record: a stack ("main;A;B", root first), the number of samples it stands for
// and their CPU time.
struct TestStack {
  std::string path;
  int64_t samples = 1;
  int64_t cpu_ns = 0;
};

// A {samples/count, cpu/nanoseconds} profile of `stacks`, every frame a symbolized function in
// /usr/bin/app (one location per distinct name).
inline Profile ProfileFromStacks(const std::vector<TestStack>& stacks) {
  ProfileBuilder b;
  b.profile().sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  uint64_t app = b.AddMapping({.start = 0x400000, .limit = 0x10000000, .file = "/usr/bin/app"});
  std::map<std::string, uint64_t> locations;
  for (const TestStack& s : stacks) {
    std::vector<uint64_t> leaf_first;
    for (size_t begin = 0; begin <= s.path.size();) {
      size_t end = s.path.find(';', begin);
      if (end == std::string::npos) end = s.path.size();
      std::string name = s.path.substr(begin, end - begin);
      auto [it, added] = locations.try_emplace(name, 0);
      if (added) {
        it->second = b.InternLocation(app, 0x400000 + 16 * locations.size(),
                                      {Line{b.InternFunction(name), 1}});
      }
      leaf_first.insert(leaf_first.begin(), it->second);
      begin = end + 1;
    }
    b.AddSample({.location_ids = std::move(leaf_first), .values = {s.samples, s.cpu_ns}});
  }
  return std::move(b).Build();
}

}  // namespace fs::profile

#endif  // FRAMESCOPE_PROFILE_TEST_PROFILES_H_
