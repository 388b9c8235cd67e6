#include "src/report/flamegraph.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <tuple>
#include <utility>

#include "src/base/output.h"

namespace fs::profile {
namespace {

// FNV-1a: stable across runs and platforms (std::hash is not), so a module keeps its colour.
uint32_t Fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string Colour(const CallFrame* frame) {
  if (frame == nullptr) return "hsl(0,0%,78%)";  // the root
  char buf[48];
  int hue = static_cast<int>(Fnv1a(frame->module) % 360);
  // Unsymbolized frames are washed out so missing symbols stand out at a glance.
  std::snprintf(buf, sizeof(buf), "hsl(%d,%d%%,%d%%)", hue, frame->symbolized ? 70 : 15,
                frame->symbolized ? 62 : 72);
  return buf;
}

// The prefix of `name` that fits `width_px` as a label (about 7 px a character at 12 px), or ""
// when not even a few characters fit. Cuts at a UTF-8 character boundary.
std::string FitLabel(const std::string& name, double width_px) {
  double fit = std::floor((width_px - 6) / 7);
  if (fit < 3) return "";
  auto n = static_cast<size_t>(fit);
  if (name.size() <= n) return name;
  size_t cut = n - 2;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return name.substr(0, cut) + "..";
}

std::string FormatDouble(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// 4510 → "4,510": sample counts are read by people.
std::string WithCommas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string Plural(int64_t n, const char* one, const char* many) {
  return WithCommas(n) + " " + (n == 1 ? one : many);
}

// What the tree's value is, in words: "CPU time" for a CPU profile, else the type's name.
std::string ValueName(const CallTree& tree) {
  return tree.value_type == "cpu" ? "CPU time" : tree.value_type;
}

// A value of the tree's type for people: durations in ms or s, anything else with its unit.
std::string FormatValue(int64_t v, const CallTree& tree) {
  if (tree.value_unit == "nanoseconds") {
    double ms = static_cast<double>(v) / 1e6;
    return ms >= 1000 ? FormatDouble(ms / 1000, 2) + " s" : FormatDouble(ms, 2) + " ms";
  }
  return WithCommas(v) + " " + tree.value_unit;
}

// When the value is the sample count itself, stating it twice would only confuse.
bool ValueIsSamples(const CallTree& tree) { return tree.value_type == "samples"; }

// "1,234 samples, 12.34 ms CPU time": what a node stands for.
std::string Amount(int64_t samples, int64_t value, const CallTree& tree) {
  std::string s = Plural(samples, "sample", "samples");
  if (!ValueIsSamples(tree)) s += ", " + FormatValue(value, tree) + " " + ValueName(tree);
  return s;
}

// Click-to-zoom, reset, search and the #search=/#zoom= fragment. It only reads the data-*
// attributes and <title>s the C++ side emitted; no profile data is embedded in the script.
constexpr const char* kScript = R"JS(
(function() {
  var svg = document.getElementById('fs-svg');
  var W = parseFloat(svg.getAttribute('data-width'));
  var total = parseFloat(svg.getAttribute('data-total'));
  var totalSamples = parseFloat(svg.getAttribute('data-total-samples'));
  var valueName = svg.getAttribute('data-value-name');
  var status = document.getElementById('fs-status');
  var details = document.getElementById('fs-details');
  var input = document.getElementById('fs-search');
  var frames = [], byId = {};
  var gs = svg.querySelectorAll('g.f');
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i], title = g.querySelector('title').textContent, nl = title.indexOf('\n');
    var f = {g: g, r: g.querySelector('rect'), t: g.querySelector('text'),
             name: nl < 0 ? title : title.substring(0, nl), tip: title,
             s: parseFloat(g.getAttribute('data-s')), v: parseFloat(g.getAttribute('data-v')),
             n: parseFloat(g.getAttribute('data-n')), d: parseInt(g.getAttribute('data-d'), 10),
             marker: g.classList.contains('m')};
    f.label = g.getAttribute('data-label') || f.name;
    f.fill = f.r.getAttribute('fill');
    frames.push(f);
    byId[g.id] = f;
  }
  function label(f, x, w) {
    var n = Math.floor((w - 6) / 7), s = '';
    if (n >= 3) s = f.label.length <= n ? f.label : f.label.substring(0, n - 2) + '..';
    f.t.textContent = s;
    f.t.setAttribute('x', (x + 3).toFixed(2));
  }
  function place(f, x, w, shown, ancestor) {
    f.g.style.display = shown ? '' : 'none';
    if (!shown) return;
    f.r.setAttribute('x', x.toFixed(2));
    f.r.setAttribute('width', w.toFixed(2));
    f.g.classList.toggle('anc', ancestor);
    label(f, x, w);
  }
  function zoom(z) {
    if (!z || z.d === 0) { reset(); return; }
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      if (f.d >= z.d && f.s >= z.s && f.s + f.v <= z.s + z.v) {
        place(f, (f.s - z.s) / z.v * W, f.v / z.v * W, true, false);
      } else if (f.d < z.d && f.s <= z.s && f.s + f.v >= z.s + z.v) {
        place(f, 0, W, true, true);
      } else {
        place(f, 0, 0, false, false);
      }
    }
    status.setAttribute('data-zoomed', z.g.id);
  }
  function reset() {
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      place(f, f.s / total * W, f.v / total * W, true, false);
    }
    status.setAttribute('data-zoomed', '');
  }
  // Literal by default: function names are full of regex syntax ("operator()", "[unknown]",
  // "lib.so+0x1a"). "/re/" or "/re/i" is a regular expression; a bad one throws.
  function matcher(term) {
    var m = /^\/(.+)\/([imsu]*)$/.exec(term);
    if (!m) return {mode: 'literal', test: function(s) { return s.indexOf(term) >= 0; }};
    var re = new RegExp(m[1], m[2]);
    return {mode: 'regex', test: function(s) { return re.test(s); }};
  }
  function pct(a, b) { return (b > 0 ? a / b * 100 : 0).toFixed(1); }
  function search(term) {
    var match = null, error = '', hits = [];
    if (term !== '') {
      try { match = matcher(term); } catch (e) { error = e.message; }
    }
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      // The root and the depth-cap markers are not functions.
      var m = match !== null && f.d > 0 && !f.marker && match.test(f.name);
      f.r.setAttribute('fill', m ? 'rgb(230,0,230)' : f.fill);
      f.r.style.fillOpacity = term !== '' && !m ? '0.35' : '';  // dim the rest
      if (m) hits.push(f);
    }
    // Frames' ranges are nested or disjoint, so a sample under several matching frames
    // (recursion, nested matches) counts once by summing only the outermost matches.
    hits.sort(function(a, b) { return a.s - b.s || a.d - b.d; });
    var end = -Infinity, v = 0, n = 0;
    for (var j = 0; j < hits.length; j++) {
      if (hits[j].s < end) continue;
      v += hits[j].v; n += hits[j].n; end = hits[j].s + hits[j].v;
    }
    var mode = term === '' ? '' : match ? match.mode : 'invalid';
    status.setAttribute('data-search-mode', mode);
    status.setAttribute('data-matched-samples', match ? String(n) : '');
    status.setAttribute('data-matched-samples-pct', match ? pct(n, totalSamples) : '');
    status.setAttribute('data-matched-value-pct', match ? pct(v, total) : '');
    status.textContent = !match ? (error ? 'invalid regular expression: ' + error : '') :
        'matched ' + n.toLocaleString('en-US') + ' of ' + totalSamples.toLocaleString('en-US') +
        ' samples (' + pct(n, totalSamples) + '%), ' + pct(v, total) + '% of ' + valueName +
        ' (frames drawn)';
  }
  svg.addEventListener('click', function(e) {
    var g = e.target.closest('g.f');
    if (g) zoom(byId[g.id]);
  });
  svg.addEventListener('mouseover', function(e) {
    var g = e.target.closest('g.f');
    details.textContent = g ? byId[g.id].tip.replace('\n', ' \u2014 ') : '\u00a0';
  });
  document.getElementById('fs-reset').addEventListener('click', reset);
  document.getElementById('fs-search-form').addEventListener('submit', function(e) {
    e.preventDefault();
    search(input.value);
  });
  document.getElementById('fs-clear').addEventListener('click', function() {
    input.value = '';
    search('');
  });
  var params = new URLSearchParams(location.hash.replace(/^#/, '') ||
                                   location.search.replace(/^\?/, ''));
  if (params.get('zoom')) zoom(byId[params.get('zoom')]);
  if (params.get('search')) { input.value = params.get('search'); search(input.value); }
  status.setAttribute('data-ready', '1');
})();
)JS";

constexpr const char* kStyle = R"CSS(
body { font-family: Verdana, sans-serif; font-size: 13px; margin: 12px; background: #fff; }
h1 { font-size: 17px; margin: 0 0 6px 0; }
#fs-controls { margin: 4px 0; }
#fs-status { display: inline-block; margin-left: 12px; font-weight: bold; }
#fs-details { height: 18px; margin: 4px 0; white-space: nowrap; overflow: hidden; }
svg text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; pointer-events: none; }
g.f { cursor: pointer; }
g.f rect { stroke: #fff; stroke-width: 0.5; }
g.f:hover rect { stroke: #000; }
g.anc rect { fill-opacity: 0.5; }
g.m rect { stroke: #888; stroke-dasharray: 3 2; }
g.m text { font-style: italic; }
)CSS";

// Children of every node as CSR lists (kids[first[i] .. first[i + 1])) by a counting sort over
// parents, and each frame's rank in (name, module) order, as flamegraph.pl orders siblings.
class Children {
 public:
  explicit Children(const CallTree& tree) : tree_(tree) {
    const size_t n = tree.nodes.size();
    first_.assign(n + 1, 0);
    kids_.resize(n > 0 ? n - 1 : 0);
    for (size_t i = 1; i < n; ++i) ++first_[static_cast<size_t>(tree.nodes[i].parent) + 1];
    for (size_t i = 0; i < n; ++i) first_[i + 1] += first_[i];
    std::vector<size_t> fill(first_.begin(), first_.end() - 1);
    for (size_t i = 1; i < n; ++i) {
      kids_[fill[static_cast<size_t>(tree.nodes[i].parent)]++] = static_cast<int32_t>(i);
    }
    std::vector<int32_t> order(tree.frames.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      const CallFrame& fa = tree.frames[static_cast<size_t>(a)];
      const CallFrame& fb = tree.frames[static_cast<size_t>(b)];
      return std::tie(fa.name, fa.module) < std::tie(fb.name, fb.module);
    });
    rank_.resize(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      rank_[static_cast<size_t>(order[i])] = static_cast<int32_t>(i);
    }
  }

  // The children of `node` in name order. Sorted on demand, so only drawn nodes pay for it.
  const std::vector<int32_t>& Sorted(int32_t node) {
    auto i = static_cast<size_t>(node);
    sorted_.assign(kids_.begin() + static_cast<std::ptrdiff_t>(first_[i]),
                   kids_.begin() + static_cast<std::ptrdiff_t>(first_[i + 1]));
    std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
      return rank_[static_cast<size_t>(tree_.nodes[static_cast<size_t>(a)].frame)] <
             rank_[static_cast<size_t>(tree_.nodes[static_cast<size_t>(b)].frame)];
    });
    return sorted_;
  }

 private:
  const CallTree& tree_;
  std::vector<size_t> first_;
  std::vector<int32_t> kids_, rank_, sorted_;
};

// Levels of callees under each node (0 for a leaf); children follow parents, so one reverse
// pass suffices.
std::vector<int32_t> SubtreeHeights(const CallTree& tree) {
  std::vector<int32_t> height(tree.nodes.size(), 0);
  for (size_t i = tree.nodes.size(); i-- > 1;) {
    int32_t& h = height[static_cast<size_t>(tree.nodes[i].parent)];
    h = std::max(h, height[i] + 1);
  }
  return height;
}

// Keeps the `max` widest rects; ties go to the shallower frame. A child is never wider than its
// parent and is deeper, so the kept set always includes every kept frame's ancestors.
void KeepWidest(const CallTree& tree, size_t max, std::vector<FlameRect>* rects) {
  if (rects->size() <= max) return;
  std::vector<size_t> idx(rects->size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(max), idx.end(),
                   [&](size_t a, size_t b) {
                     const FlameRect& ra = (*rects)[a];
                     const FlameRect& rb = (*rects)[b];
                     int64_t va = tree.nodes[static_cast<size_t>(ra.node)].value;
                     int64_t vb = tree.nodes[static_cast<size_t>(rb.node)].value;
                     if (va != vb) return va > vb;
                     if (ra.depth != rb.depth) return ra.depth < rb.depth;
                     return a < b;
                   });
  std::vector<bool> keep(rects->size(), false);
  for (size_t i = 0; i < max; ++i) keep[idx[i]] = true;
  std::vector<FlameRect> kept;
  kept.reserve(max);
  for (size_t i = 0; i < rects->size(); ++i) {
    if (keep[i]) kept.push_back((*rects)[i]);
  }
  *rects = std::move(kept);
}

}  // namespace

std::vector<FlameRect> LayoutFlameGraph(const CallTree& tree, const FlamegraphOptions& options) {
  std::vector<FlameRect> rects;
  const int64_t total = tree.total();
  if (total <= 0 || options.width_px <= 0) return rects;
  const double px_per_value = options.width_px / static_cast<double>(total);
  Children children(tree);
  const std::vector<int32_t> height = SubtreeHeights(tree);

  // Pre-order walk; a pruned node's subtree is never visited, so the cost follows what is drawn.
  std::vector<std::pair<int32_t, int64_t>> stack{{0, 0}};
  while (!stack.empty()) {
    auto [node, start] = stack.back();
    stack.pop_back();
    const CallNode& cn = tree.nodes[static_cast<size_t>(node)];
    double width = static_cast<double>(cn.value) * px_per_value;
    if (width < options.min_width_px) continue;
    rects.push_back({node, cn.depth, start, static_cast<double>(start) * px_per_value, width});
    if (cn.depth >= options.max_depth) {
      rects.back().levels_cut = height[static_cast<size_t>(node)];
      continue;
    }
    const std::vector<int32_t>& kids = children.Sorted(node);
    // Children start at the parent's left edge (its self time is the gap on the right), and are
    // pushed right to left so the leftmost is popped (and emitted) first.
    int64_t child_start = start;
    for (int32_t k : kids) child_start += tree.nodes[static_cast<size_t>(k)].value;
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) {
      child_start -= tree.nodes[static_cast<size_t>(*it)].value;
      stack.push_back({*it, child_start});
    }
  }
  KeepWidest(tree, options.max_frames, &rects);
  return rects;
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// What a page variant supplies per drawn frame: its fill, the tooltip's second line and any extra
// attributes for its <g> (each starting with a space, already escaped).
struct FrameStyle {
  std::string fill;
  std::string stats;
  std::string attrs;
};
using StyleFn = std::function<FrameStyle(int32_t node)>;

// One <g>: a frame (class "f") or a depth-cap marker (class "f m"), at `depth` levels below the
// root. `label` is drawn in the box when it fits; the tooltip is `name` + "\n" + `stats`.
void AppendFrame(const std::string& cls, const std::string& id, const FlameRect& r, int depth,
                 const CallNode& node, const std::string& name, const std::string& label,
                 const FrameStyle& fs, int fh, std::string* out) {
  const int y = depth * fh;
  *out += "<g class=\"" + cls + "\" id=\"" + id + "\" data-s=\"" + std::to_string(r.start) +
          "\" data-v=\"" + std::to_string(node.value) + "\" data-n=\"" +
          std::to_string(node.samples) + "\" data-d=\"" + std::to_string(depth) + "\"" + fs.attrs;
  if (label != name) *out += " data-label=\"" + HtmlEscape(label) + "\"";
  *out += "><title>" + HtmlEscape(name) + "\n" + HtmlEscape(fs.stats) + "</title><rect x=\"" +
          FormatDouble(r.x_px, 2) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
          FormatDouble(r.width_px, 2) + "\" height=\"" + std::to_string(fh - 1) + "\" fill=\"" +
          fs.fill + "\"/><text x=\"" + FormatDouble(r.x_px + 3, 2) + "\" y=\"" +
          std::to_string(y + fh - 4) + "\">" + HtmlEscape(FitLabel(label, r.width_px)) +
          "</text></g>\n";
}

// The SVG: icicle layout (depth d at y = d * frame height), the root labelled with the totals,
// and a marker under each frame whose callees were cut by max_depth.
std::string RenderSvg(const CallTree& tree, const std::vector<FlameRect>& rects,
                      const FlamegraphOptions& options, const StyleFn& style) {
  int levels = 0;
  for (const FlameRect& r : rects) levels = std::max(levels, r.depth + (r.levels_cut > 0 ? 2 : 1));
  const int fh = std::max(options.frame_height_px, 4);
  const std::string width = FormatDouble(options.width_px, 0);
  std::string out;
  out.reserve(rects.size() * 300 + 512);
  out += "<svg id=\"fs-svg\" width=\"" + width + "\" height=\"" + std::to_string(levels * fh) +
         "\" data-width=\"" + width + "\" data-total=\"" + std::to_string(tree.total()) +
         "\" data-total-samples=\"" + std::to_string(tree.total_samples()) +
         "\" data-value-name=\"" + HtmlEscape(ValueName(tree)) + "\">\n";
  for (const FlameRect& r : rects) {
    const CallNode& node = tree.nodes[static_cast<size_t>(r.node)];
    const std::string& name = tree.NameOf(r.node);
    const std::string label =
        r.node == 0 ? name + ": " + Amount(node.samples, node.value, tree) : name;
    AppendFrame("f", "f" + std::to_string(r.node), r, r.depth, node, name, label, style(r.node), fh,
                &out);
    if (r.levels_cut > 0) {
      const std::string what = "[" + Plural(r.levels_cut, "level", "levels") + " not drawn]";
      FrameStyle marker{"rgb(245,245,245)",
                        "callees deeper than " + std::to_string(options.max_depth) +
                            " levels are not drawn (framescope flamegraph --max-depth)",
                        ""};
      AppendFrame("f m", "m" + std::to_string(r.node), r, r.depth + 1, node, what, what, marker, fh,
                  &out);
    }
  }
  out += "</svg>\n";
  return out;
}

// The page shared by the flame graph and the differential flame graph: header, controls, the
// laid-out SVG, `after_svg` (raw HTML) and the zoom/search script.
std::string RenderPage(const CallTree& tree, const std::vector<FlameRect>& rects,
                       const FlamegraphOptions& options, const StyleFn& style,
                       const std::string& after_svg) {
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  out += HtmlEscape(options.title);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<h1>";
  out += HtmlEscape(options.title);
  out += "</h1>\n<div id=\"fs-summary\">" +
         HtmlEscape(Amount(tree.total_samples(), tree.total(), tree)) +
         ". Root on top; a frame's width is its share of " + HtmlEscape(ValueName(tree)) +
         ".</div>\n";
  out +=
      "<div id=\"fs-controls\"><button id=\"fs-reset\" type=\"button\">Reset zoom</button>"
      " <form id=\"fs-search-form\" style=\"display:inline\"><input id=\"fs-search\" "
      "type=\"text\" size=\"30\" placeholder=\"search: text, or /regex/\"> <button "
      "type=\"submit\">Search</button> <button id=\"fs-clear\" type=\"button\">Clear</button>"
      "</form><div id=\"fs-status\" data-matched-samples=\"\" data-zoomed=\"\"></div></div>\n";
  out += "<div id=\"fs-details\">&nbsp;</div>\n";
  out += RenderSvg(tree, rects, options, style);
  out += after_svg;
  out += "<script>";
  out += kScript;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

// The tree a page draws: built only as deep in detail as min_width_px can show.
CallTree TreeToDraw(const Profile& profile, const FlamegraphOptions& options) {
  return BuildCallTree(
      profile, DisplayValueIndex(profile),
      options.width_px > 0 ? std::max(options.min_width_px, 0.0) / options.width_px : 0.0);
}

std::string SignedPoints(double v) {
  // "-0.00" would read as a decrease.
  if (std::fabs(v) < 0.005) v = 0;
  return (v > 0 ? "+" : "") + FormatDouble(v, 2);
}

// White at no change, saturating to red (more) or blue (less) at `scale` points.
std::string DiffColour(double delta, double scale) {
  double t = std::min(1.0, std::fabs(delta) / scale);
  int fade = static_cast<int>(std::lround(255 - 200 * t));
  char buf[48];
  if (delta > 0) {
    std::snprintf(buf, sizeof(buf), "rgb(255,%d,%d)", fade, fade);
  } else if (delta < 0) {
    std::snprintf(buf, sizeof(buf), "rgb(%d,%d,255)", fade, fade);
  } else {
    std::snprintf(buf, sizeof(buf), "rgb(235,235,235)");
  }
  return buf;
}

std::string DiffTableHtml(const CallTree& base, const CallTree& now) {
  std::string table =
      "<h2 style=\"font-size:15px\">Functions that changed most (self share of each profile's " +
      HtmlEscape(ValueName(now)) +
      ")</h2>\n<table id=\"fs-diff-table\" border=\"1\" cellspacing=\"0\" "
      "cellpadding=\"3\">\n<tr><th>function</th><th>base self %</th><th>new self %</th>"
      "<th>delta (points)</th></tr>\n";
  for (const DiffRow& row : DiffSelfShares(base, now, 20)) {
    table += "<tr data-delta=\"" + SignedPoints(row.delta_points) + "\"><td>" +
             HtmlEscape(row.function) + "</td><td>" + FormatDouble(row.base_self_pct, 2) +
             "</td><td>" + FormatDouble(row.new_self_pct, 2) + "</td><td>" +
             SignedPoints(row.delta_points) + "</td></tr>\n";
  }
  table += "</table>\n";
  return table;
}

}  // namespace

std::string RenderFlamegraphHtml(const Profile& profile, const FlamegraphOptions& options) {
  CallTree tree = TreeToDraw(profile, options);
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, options);
  auto style = [&](int32_t n) {
    const CallNode& node = tree.nodes[static_cast<size_t>(n)];
    std::string s = Amount(node.samples, node.value, tree) + ", " +
                    FormatDouble(Percent(node.value, tree.total()), 2) + "% of " + ValueName(tree);
    const CallFrame* frame =
        node.frame >= 0 ? &tree.frames[static_cast<size_t>(node.frame)] : nullptr;
    return FrameStyle{Colour(frame), std::move(s), ""};
  };
  return RenderPage(tree, rects, options, style, "");
}

StatusOr<std::string> RenderDiffFlamegraphHtml(const Profile& base, const Profile& now,
                                               const FlamegraphOptions& options) {
  // Full trees: self shares for the table need every leaf, and base paths must be matched at any
  // depth. The layout still prunes what is too narrow to draw.
  CallTree bt = BuildCallTree(base, DisplayValueIndex(base));
  CallTree nt = BuildCallTree(now, DisplayValueIndex(now));
  ASSIGN_OR_RETURN(CallTreeDiff diff, DiffCallTrees(bt, nt));
  // Points at which colours saturate: the largest change, at least 5 so run-to-run noise
  // (1-2 points between two recordings of the same workload) stays pale.
  const double scale = std::max(5.0, diff.max_abs_delta);
  auto style = [&](int32_t n) {
    auto i = static_cast<size_t>(n);
    std::string stats =
        "share of " + ValueName(nt) + ": base " + FormatDouble(diff.base_pct[i], 2) + "%, new " +
        FormatDouble(diff.new_pct[i], 2) + "%, delta " + SignedPoints(diff.delta_points[i]) +
        " points; " + Plural(nt.nodes[i].samples, "sample", "samples") + " in new";
    return FrameStyle{DiffColour(diff.delta_points[i], scale), std::move(stats),
                      " data-delta=\"" + SignedPoints(diff.delta_points[i]) + "\""};
  };
  return RenderPage(nt, LayoutFlameGraph(nt, options), options, style, DiffTableHtml(bt, nt));
}

Status WriteDiffFlamegraphFile(const std::string& path, const Profile& base, const Profile& now,
                               const FlamegraphOptions& options) {
  StatusOr<std::string> html = RenderDiffFlamegraphHtml(base, now, options);
  if (!html.ok()) return html.status();
  return WriteOutput(path, *html).Annotate("writing differential flame graph " + path);
}

Status WriteFlamegraphFile(const std::string& path, const Profile& profile,
                           const FlamegraphOptions& options) {
  return WriteOutput(path, RenderFlamegraphHtml(profile, options))
      .Annotate("writing flame graph " + path);
}

}  // namespace fs::profile
