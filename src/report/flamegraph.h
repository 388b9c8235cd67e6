// Flame graph HTML (milestone 4): one self-contained file (inline SVG + inline script, nothing
// fetched) rendering a Profile's call tree (src/profile/call_tree.h) icicle-style: the root on
// top and callees below it, as pprof's and Chrome's flame views draw it. The root is then where
// the page opens, whatever the depth: a deep (e.g. junk-cyclic, several hundred frames) stack
// only lengthens the page below the part worth reading, and frames deeper than
// FlamegraphOptions::max_depth are replaced by one marker saying how many levels were cut.
// Layout happens here in C++ so the page opens fast however large the profile is: frames
// narrower than a pixel threshold are pruned, and the script only rescales what was emitted
// (click to zoom, reset, search, tooltips).
//
// Counts are labelled as what they are: "samples" is the number of samples (the sum of the
// "samples" values), a frame's width is its share of the profile's value (CPU time for a CPU
// profile). Search is literal; `/regex/` (optionally `/regex/i`) searches by regular expression.
//
// The page also applies a URL fragment on load, e.g. `file:///x.html#search=Burn&zoom=f12`, and
// records what it computed in <div id="fs-status" data-matched-samples="120" ...
// data-zoomed="f12">, so a headless browser run (`chromium --headless --dump-dom`) can check
// the script really ran.
#ifndef FRAMESCOPE_REPORT_FLAMEGRAPH_H_
#define FRAMESCOPE_REPORT_FLAMEGRAPH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"
#include "src/profile/call_tree.h"
#include "src/profile/profile.h"

namespace fs::profile {

struct FlamegraphOptions {
  std::string title = "Flame Graph";
  double width_px = 1200;
  // Frames narrower than this are not emitted (nor, being narrower still, their callees).
  double min_width_px = 0.5;
  int frame_height_px = 16;
  // Hard cap on emitted frames, widest first, so the file stays bounded even for deep,
  // bushy profiles where pruning by width alone would still leave too much.
  size_t max_frames = 20000;
  // Deepest level drawn (the root is level 0). A frame at this level whose callees go deeper
  // gets a marker below it instead of them, so no stack makes the page arbitrarily tall.
  int max_depth = 100;
};

// One laid-out frame: the node it draws, its place in value units (start is the sum of the
// values of the frames left of it, so x = start / total * width) and in pixels.
struct FlameRect {
  int32_t node = 0;
  int32_t depth = 0;
  int64_t start = 0;
  double x_px = 0;
  double width_px = 0;
  // Levels of callees below this frame left out by FlamegraphOptions::max_depth; 0 when none.
  int32_t levels_cut = 0;
};

// Lays out `tree`: children sorted by name left to right, each as wide as its value's share of
// the total. Pruned per FlamegraphOptions. Parents precede children in the result.
std::vector<FlameRect> LayoutFlameGraph(const CallTree& tree, const FlamegraphOptions& options);

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string HtmlEscape(std::string_view text);

// The complete HTML page for `profile`.
std::string RenderFlamegraphHtml(const Profile& profile, const FlamegraphOptions& options);

// RenderFlamegraphHtml, written with WriteOutput (src/base/output.h: "-" is stdout).
Status WriteFlamegraphFile(const std::string& path, const Profile& profile,
                           const FlamegraphOptions& options);

// ---- Differential flame graph (`framescope diff BASE NEW`). ----
// Layout is NEW's tree; each frame is coloured by how its call path's share changed
// (DiffCallTrees: share_new - share_base in percentage points): red = more, blue = less, white =
// unchanged, saturating at the largest change drawn. Each <g> carries data-delta="+12.50".
// Paths only in BASE cannot be drawn; the table below the graph (DiffSelfShares) lists them as
// decreases.

// The complete differential page. Fails when the two profiles hold different value types (e.g.
// cpu vs alloc bytes), which cannot be meaningfully compared.
StatusOr<std::string> RenderDiffFlamegraphHtml(const Profile& base, const Profile& now,
                                               const FlamegraphOptions& options);

// RenderDiffFlamegraphHtml, written with WriteOutput (src/base/output.h).
Status WriteDiffFlamegraphFile(const std::string& path, const Profile& base, const Profile& now,
                               const FlamegraphOptions& options);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_FLAMEGRAPH_H_
