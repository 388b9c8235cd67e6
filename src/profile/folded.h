// Folded stacks text, the input format of Brendan Gregg's flamegraph.pl: one line per distinct
// stack, frames root first separated by ';', then a space and the count:
//   main;Process;Decode 42
#ifndef FRAMESCOPE_PROFILE_FOLDED_H_
#define FRAMESCOPE_PROFILE_FOLDED_H_

#include <cstdint>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/profile/profile.h"

namespace fs::profile {

struct FoldedStack {
  std::vector<std::string> frames;  // root first
  int64_t count = 0;
  bool operator==(const FoldedStack&) const = default;
};

// Renders `profile` as folded stacks using sample values at `value_index` (an index into
// sample_types; out of range yields ""). Each location contributes its lines' function names,
// inlined frames expanded outermost → innermost; a location without lines prints
// `module+0xoffset` (file offset within the mapping's file) or `0xaddress` without a mapping.
// Identical stacks are merged, zero totals dropped, and lines sorted so output is
// deterministic. ';' and line breaks inside names are replaced by '_' to keep the format
// parseable; a sample without locations is attributed to "[unknown]".
std::string ToFolded(const Profile& profile, int value_index = 0);

// Parses folded text; blank lines are skipped and a trailing '\r' is ignored. Errors name the
// 1-based line: "folded line 3: missing count".
StatusOr<std::vector<FoldedStack>> ParseFolded(const std::string& text);

}  // namespace fs::profile

#endif  // FRAMESCOPE_PROFILE_FOLDED_H_
