// framescope flamegraph: a pprof profile as one self-contained HTML flame graph (root on top),
// zoomable and searchable in any browser without network access.
#include <cstdio>
#include <string>
#include <vector>

#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/profile/pprof.h"
#include "src/report/flamegraph.h"

namespace fs {

int FlamegraphMain(int argc, char** argv) {
  std::string out, title;
  double min_width = 0.5;
  int max_depth = profile::FlamegraphOptions{}.max_depth;
  FlagSet flags(
      "framescope flamegraph",
      "Renders a CPU profile (pprof, as `framescope record` writes it) as a flame graph:\n"
      "one HTML file with inline SVG and script, nothing fetched from the network.\n"
      "Drawn icicle-style, root on top, so the page opens on the root and the widest\n"
      "paths however deep the stacks; levels beyond --max-depth become one marker.\n"
      "Width is each frame's share of the \"cpu\" value (CPU time) when present;\n"
      "tooltips give samples, CPU time and share. Click a frame to zoom. Search is\n"
      "literal (\"operator()\", \"[unknown]\" match as typed); /regex/ for a regular\n"
      "expression. Frames narrower than --min-width-px (of 1200 px) are left out so\n"
      "large profiles open fast. The output must not be the input; an existing output\n"
      "must be a regular file (replaced atomically): symlinks, devices and FIFOs are\n"
      "refused, except \"-\" (standard output) and /dev/null.");
  flags.String("out", &out, "HTML output (default: IN with .html; \"-\": standard output)");
  flags.ShortName('o', "out");
  flags.Double("min-width-px", &min_width, "omit frames narrower than this many pixels");
  flags.Int("max-depth", &max_depth,
            "draw at most this many levels below the root; deeper callees become one marker");
  flags.String("title", &title, "page title (default: Flame Graph: IN)");
  flags.AllowPositional("IN.prof");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (flags.positional().size() != 1) {
    fprintf(stderr, "framescope flamegraph: give exactly one profile (IN.prof)\n\n%s",
            flags.Usage().c_str());
    return 2;
  }
  if (!(min_width >= 0 && min_width <= 1200)) {
    fprintf(stderr, "framescope flamegraph: --min-width-px must be between 0 and 1200\n");
    return 2;
  }
  if (max_depth < 1) {
    fprintf(stderr, "framescope flamegraph: --max-depth must be at least 1\n");
    return 2;
  }
  const std::string in = flags.positional()[0];
  if (out.empty()) {
    out = SwapExtension(in, ".prof", ".html");
  }
  if (title.empty()) title = "Flame Graph: " + in;
  if (Status st = CheckOutputs({out}, {in}); !st.ok()) {
    fprintf(stderr, "framescope flamegraph: %s\n", st.message().c_str());
    return 2;
  }

  auto profile = profile::ReadPprofFile(in);
  if (!profile.ok()) {
    fprintf(stderr,
            "framescope flamegraph: %s\n"
            "(expected a pprof profile such as `framescope record -o OUT.prof` writes)\n",
            profile.status().message().c_str());
    return 1;
  }
  profile::FlamegraphOptions options;
  options.title = title;
  options.min_width_px = min_width;
  options.max_depth = max_depth;
  if (Status st = profile::WriteFlamegraphFile(out, *profile, options); !st.ok()) {
    fprintf(stderr, "framescope flamegraph: %s\n", st.message().c_str());
    return 1;
  }
  if (profile->samples.empty()) {
    fprintf(stderr, "framescope flamegraph: warning: %s has no samples; the graph is empty\n",
            in.c_str());
  }
  fprintf(out == "-" ? stderr : stdout, "wrote %s\n", OutputName(out).c_str());
  return 0;
}

}  // namespace fs
