// The network latency map rendered (src/io/net_window.h's EdgeMap): an SVG edge graph (services
// as nodes at fixed places, every measured edge an arrow coloured by its p99 bucket against
// 5 ms and labelled with p99 and rate), the "Network" section of index.html and the network
// section of the baseline document (its own markers, rewritten independently of the others).
#ifndef FRAMESCOPE_REPORT_EDGE_GRAPH_H_
#define FRAMESCOPE_REPORT_EDGE_GRAPH_H_

#include <string>

#include "src/io/net_window.h"

namespace fs::profile {

inline constexpr const char* kNetSectionBegin = "<!-- framescope:net:begin -->";
inline constexpr const char* kNetSectionEnd = "<!-- framescope:net:end -->";

// One <svg> (inline in HTML). Arrow colours: green when the p99 bucket lies at or under 5 ms,
// orange when it straddles 5 ms (a histogram without a 5 ms bound), red when it lies over 5 ms,
// grey for an idle edge (series present, no requests in the window).
std::string EdgeGraphSvg(const io::EdgeMap& m);
// EdgeGraphSvg as a standalone file (OUT/io/network_map.svg): with the XML declaration.
std::string EdgeGraphSvgFile(const io::EdgeMap& m);
// The "Network latency map" section of index.html. `json_path`: network_map.json relative to it.
std::string RenderNetHtml(const io::EdgeMap& m, const std::string& json_path);
// The network section of the baseline document, between kNetSectionBegin/End.
std::string RenderBaselineNetSection(const io::EdgeMap& m, const std::string& json_path);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_EDGE_GRAPH_H_
