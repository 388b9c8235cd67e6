// Flame graph HTML (milestone 4): one self-contained file (inline SVG + inline script, nothing
// fetched) rendering a Profile as a flame graph with the root at the bottom, as flamegraph.pl
// draws it. Layout happens here in C++ so the page opens fast however large the profile is:
// frames narrower than a pixel threshold are pruned, and the script only rescales what was
// emitted (click to zoom, reset, search with "matched: X%", tooltips).
//
// The page also applies a URL fragment on load, e.g. `file:///x.html#search=Burn&zoom=f12`, and
// records what it computed in <div id="fs-status" data-matched="75.0" data-zoomed="f12">, so a
// headless browser run (`chromium --headless --dump-dom`) can check the script really ran.
#ifndef FRAMESCOPE_REPORT_FLAMEGRAPH_H_
#define FRAMESCOPE_REPORT_FLAMEGRAPH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"
#include "src/profile/profile.h"

namespace fs::profile {

// The call tree of a profile: node 0 is the synthetic root "all"; a node's children are the
// distinct frames called from it (frames with the same name and module merged). Node indexes
// are deterministic for a given profile; the HTML names each frame's element "f<index>".
struct FlameNode {
  int32_t frame = -1;   // index into FlameTree::frames; -1 for the root
  int32_t parent = -1;  // node index; -1 for the root
  int32_t depth = 0;    // root 0
  int64_t value = 0;    // inclusive weight (sample values at the chosen index)
  int64_t samples = 0;  // inclusive number of samples
};

struct FlameFrame {
  std::string name;    // function name, or `module+0xoffset` when unsymbolized
  std::string module;  // basename of the mapping's file; "" when unknown
  bool symbolized = false;
};

struct FlameTree {
  std::vector<FlameFrame> frames;
  std::vector<FlameNode> nodes;  // nodes[0] is the root; parents precede their children
  std::string value_type;        // e.g. "cpu"
  std::string value_unit;        // e.g. "nanoseconds"
  int64_t total() const { return nodes.empty() ? 0 : nodes[0].value; }
};

// The sample_types index a flame graph shows: the "cpu" type if present, else 0.
int FlameValueIndex(const Profile& profile);

// Builds the call tree from `profile`'s samples at `value_index`. Frames per location follow
// ToFolded: lines expanded outermost → innermost (inlined frames become their own frames), a
// location without lines is `module+0xoffset`. Samples with a value <= 0 are skipped.
// Nodes below `min_fraction` of the total are kept but their callees are not built: with
// min_fraction = min width / width, the tree holds exactly what a layout can draw, however
// many distinct stacks the profile has. 0 builds the full tree.
FlameTree BuildFlameTree(const Profile& profile, int value_index, double min_fraction = 0);

struct FlamegraphOptions {
  std::string title = "Flame Graph";
  double width_px = 1200;
  // Frames narrower than this are not emitted (nor, being narrower still, their callees).
  double min_width_px = 0.5;
  int frame_height_px = 16;
  // Hard cap on emitted frames, widest first, so the file stays bounded even for deep,
  // bushy profiles where pruning by width alone would still leave too much.
  size_t max_frames = 20000;
};

// One laid-out frame: the node it draws, its place in value units (start is the sum of the
// values of the frames left of it, so x = start / total * width) and in pixels.
struct FlameRect {
  int32_t node = 0;
  int32_t depth = 0;
  int64_t start = 0;
  double x_px = 0;
  double width_px = 0;
};

// Lays out `tree`: children sorted by name left to right, each as wide as its value's share of
// the total. Pruned per FlamegraphOptions. Parents precede children in the result.
std::vector<FlameRect> LayoutFlameGraph(const FlameTree& tree, const FlamegraphOptions& options);

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string HtmlEscape(std::string_view text);

// The complete HTML page for `profile`.
std::string RenderFlamegraphHtml(const Profile& profile, const FlamegraphOptions& options);

// RenderFlamegraphHtml, written with WriteFileAtomic.
Status WriteFlamegraphFile(const std::string& path, const Profile& profile,
                           const FlamegraphOptions& options);

// ---- Differential flame graph (`framescope diff BASE NEW`). ----
// Layout is NEW's tree; each frame is coloured by how its call path's share changed, each profile
// normalised to its own total (share_new - share_base in percentage points): red = more, blue =
// less, white = unchanged, saturating at the largest change drawn. Each <g> carries
// data-delta="+12.50". Paths only in BASE cannot be drawn; the table below the graph (self
// shares per function, see DiffTable) lists them as decreases.

struct DiffRow {
  std::string function;
  double base_self_pct = 0;  // self value / BASE total * 100
  double new_self_pct = 0;
  double delta_points = 0;  // new_self_pct - base_self_pct
};

// Functions (by name) ordered by |delta| descending, then name; at most `limit` rows.
std::vector<DiffRow> DiffTable(const Profile& base, const Profile& now, size_t limit = 20);

// The complete differential page. Fails when the two profiles hold different value types (e.g.
// cpu vs alloc bytes), which cannot be meaningfully compared.
StatusOr<std::string> RenderDiffFlamegraphHtml(const Profile& base, const Profile& now,
                                               const FlamegraphOptions& options);

// RenderDiffFlamegraphHtml, written with WriteFileAtomic.
Status WriteDiffFlamegraphFile(const std::string& path, const Profile& base, const Profile& now,
                               const FlamegraphOptions& options);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_FLAMEGRAPH_H_
