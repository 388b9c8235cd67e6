// The call tree of a Profile and the maths over it that reports and analysers share: the tree a
// flame graph draws, self values per function, and the comparison of two profiles (per call
// path and per function). No rendering here: the HTML flame graph (src/report/flamegraph.h),
// the CPU report and later the regression detector all read these structures.
#ifndef FRAMESCOPE_PROFILE_CALL_TREE_H_
#define FRAMESCOPE_PROFILE_CALL_TREE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/profile/profile.h"

namespace fs::profile {

// Node 0 is the synthetic root "all"; a node's children are the distinct frames called from it
// (frames with the same name and module merged). Node indexes are deterministic for a given
// profile.
struct CallNode {
  int32_t frame = -1;   // index into CallTree::frames; -1 for the root
  int32_t parent = -1;  // node index; -1 for the root
  int32_t depth = 0;    // root 0
  int64_t value = 0;    // inclusive weight: the sample values at the tree's value index
  // Inclusive number of samples: the sum of the "samples" values (a pprof Sample record may
  // stand for many samples of the same stack), or the number of records when the profile has
  // no "samples" value type.
  int64_t samples = 0;
};

struct CallFrame {
  std::string name;    // function name, or `module+0xoffset` when unsymbolized
  std::string module;  // basename of the mapping's file; "" when unknown
  bool symbolized = false;
};

struct CallTree {
  std::vector<CallFrame> frames;
  std::vector<CallNode> nodes;  // nodes[0] is the root; parents precede their children
  std::string value_type;       // e.g. "cpu"
  std::string value_unit;       // e.g. "nanoseconds"
  int64_t total() const { return nodes.empty() ? 0 : nodes[0].value; }
  int64_t total_samples() const { return nodes.empty() ? 0 : nodes[0].samples; }
  // The frame's name, or "all" for the root.
  const std::string& NameOf(int32_t node) const;
};

// The sample_types index reports weigh frames by: the profile's default_sample_type if it names
// one (a heap profile's inuse_space), else the "cpu" type if present, else 0.
int DisplayValueIndex(const Profile& profile);

// The index of the "samples" (count) type, or -1 when the profile has none.
int SamplesValueIndex(const Profile& profile);

// Builds the call tree from `profile`'s samples at `value_index`. Frames per location follow
// ToFolded: lines expanded outermost → innermost (inlined frames become their own frames), a
// location without lines is `module+0xoffset`. Samples with a value <= 0 are skipped.
// Nodes below `min_fraction` of the total are kept but their callees are not built: with
// min_fraction = min width / width, the tree holds exactly what a layout can draw, however
// many distinct stacks the profile has. 0 builds the full tree.
CallTree BuildCallTree(const Profile& profile, int value_index, double min_fraction = 0);

// Each node's self value: its value minus its children's.
std::vector<int64_t> SelfValues(const CallTree& tree);

// `value` as a percentage of `total` (0 when total is 0).
double Percent(int64_t value, int64_t total);

// ---- Comparing two profiles: BASE and NEW, each normalised to its own total so recordings of
// different lengths compare fairly. Shares are of each tree's value (CPU time for CPU profiles).

// Per node of NEW: the node with the same call path (frame names and modules) in BASE.
struct CallTreeDiff {
  std::vector<int32_t> base_node;    // -1 when the path is not in BASE
  std::vector<double> base_pct;      // the BASE node's share of BASE's total; 0 when absent
  std::vector<double> new_pct;       // the node's share of NEW's total
  std::vector<double> delta_points;  // new_pct - base_pct; 0 everywhere when BASE is empty
  double max_abs_delta = 0;
};

// Fails when the trees hold different value types (e.g. cpu vs alloc bytes), which cannot be
// meaningfully compared.
StatusOr<CallTreeDiff> DiffCallTrees(const CallTree& base, const CallTree& now);

// One function's self share in each profile. Paths only in BASE cannot be matched to a node
// of NEW, so this per-function view is where they show up (as decreases).
struct DiffRow {
  std::string function;
  double base_self_pct = 0;  // self value / BASE total * 100
  double new_self_pct = 0;
  double delta_points = 0;  // new_self_pct - base_self_pct
};

// Functions (by name; the module is ignored so a function compares across builds) ordered by
// |delta| descending, then name; at most `limit` rows.
std::vector<DiffRow> DiffSelfShares(const CallTree& base, const CallTree& now, size_t limit);

}  // namespace fs::profile

#endif  // FRAMESCOPE_PROFILE_CALL_TREE_H_
