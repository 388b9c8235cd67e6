// framescope diff: a differential flame graph of two pprof profiles (BASE, NEW) as one
// self-contained HTML page, plus a table of the functions whose self share changed most.
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

int DiffMain(int argc, char** argv) {
  std::string out, title;
  double min_width = 0.5;
  int max_depth = profile::FlamegraphOptions{}.max_depth;
  FlagSet flags("framescope diff",
                "Compares two CPU profiles (pprof, as `framescope record` writes them) as a\n"
                "differential flame graph: the layout is NEW's, and each frame is coloured by\n"
                "how its share of its profile's total changed (red = more, blue = less, white =\n"
                "unchanged), so profiles of different lengths compare fairly. Below the graph,\n"
                "the 20 functions whose self share changed most, including those only in BASE.\n"
                "One HTML file, nothing fetched from the network. The output must not be an\n"
                "input; an existing output must be a regular file (replaced atomically):\n"
                "symlinks, devices and FIFOs are refused, except \"-\" (stdout) and /dev/null.");
  flags.String("out", &out, "HTML output (default: NEW with .diff.html; \"-\": standard output)");
  flags.ShortName('o', "out");
  flags.Double("min-width-px", &min_width, "omit frames narrower than this many pixels");
  flags.Int("max-depth", &max_depth,
            "draw at most this many levels below the root; deeper callees become one marker");
  flags.String("title", &title, "page title (default: Diff: BASE -> NEW)");
  flags.AllowPositional("BASE.prof NEW.prof");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (flags.positional().size() != 2) {
    fprintf(stderr, "framescope diff: give exactly two profiles (BASE.prof NEW.prof)\n\n%s",
            flags.Usage().c_str());
    return 2;
  }
  if (!(min_width >= 0 && min_width <= 1200)) {
    fprintf(stderr, "framescope diff: --min-width-px must be between 0 and 1200\n");
    return 2;
  }
  if (max_depth < 1) {
    fprintf(stderr, "framescope diff: --max-depth must be at least 1\n");
    return 2;
  }
  const std::string base_path = flags.positional()[0];
  const std::string new_path = flags.positional()[1];
  if (out.empty()) out = SwapExtension(new_path, ".prof", ".diff.html");
  if (title.empty()) title = "Diff: " + base_path + " -> " + new_path;
  if (Status st = CheckOutputs({out}, {base_path, new_path}); !st.ok()) {
    fprintf(stderr, "framescope diff: %s\n", st.message().c_str());
    return 2;
  }

  profile::Profile profiles[2];
  const std::string* paths[2] = {&base_path, &new_path};
  for (int i = 0; i < 2; ++i) {
    auto p = profile::ReadPprofFile(*paths[i]);
    if (!p.ok()) {
      fprintf(stderr,
              "framescope diff: %s\n"
              "(expected a pprof profile such as `framescope record -o OUT.prof` writes)\n",
              p.status().message().c_str());
      return 1;
    }
    if (p->samples.empty()) {
      fprintf(stderr, "framescope diff: warning: %s has no samples\n", paths[i]->c_str());
    }
    profiles[i] = std::move(*p);
  }
  profile::FlamegraphOptions options;
  options.title = title;
  options.min_width_px = min_width;
  options.max_depth = max_depth;
  if (Status st = profile::WriteDiffFlamegraphFile(out, profiles[0], profiles[1], options);
      !st.ok()) {
    fprintf(stderr, "framescope diff: %s\n", st.message().c_str());
    return 1;
  }
  fprintf(out == "-" ? stderr : stdout, "wrote %s\n", OutputName(out).c_str());
  return 0;
}

}  // namespace fs
