#include "src/report/flamegraph.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "src/base/file_util.h"

namespace fs::profile {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  return buf;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Line breaks would split the tooltip's "name\nstats" in two; nothing else needs cleaning since
// every name is HTML-escaped on output.
std::string CleanName(std::string name) {
  for (char& c : name) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return name;
}

// FNV-1a: stable across runs and platforms (std::hash is not), so a module keeps its colour.
uint32_t Fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string Colour(const FlameFrame* frame) {
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
  size_t n = static_cast<size_t>(fit);
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

// Click-to-zoom, reset, search and the #search=/#zoom= fragment. It only reads the data-*
// attributes and <title>s the C++ side emitted; no profile data is embedded in the script.
constexpr const char* kScript = R"JS(
(function() {
  var svg = document.getElementById('fs-svg');
  var W = parseFloat(svg.getAttribute('data-width'));
  var total = parseFloat(svg.getAttribute('data-total'));
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
             d: parseInt(g.getAttribute('data-d'), 10)};
    f.fill = f.r.getAttribute('fill');
    frames.push(f);
    byId[g.id] = f;
  }
  function label(f, x, w) {
    var n = Math.floor((w - 6) / 7), s = '';
    if (n >= 3) s = f.name.length <= n ? f.name : f.name.substring(0, n - 2) + '..';
    f.t.textContent = s;
    f.t.setAttribute('x', (x + 3).toFixed(2));
  }
  function place(f, x, w, shown, ancestor) {
    f.g.style.display = shown ? '' : 'none';
    if (!shown) return;
    f.r.setAttribute('x', x.toFixed(2));
    f.r.setAttribute('width', w.toFixed(2));
    f.g.setAttribute('class', ancestor ? 'f anc' : 'f');
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
  function search(term) {
    var re = null, sum = 0, end = -1, hits = [];
    try { re = new RegExp(term); } catch (e) { re = null; }
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      var m = term !== '' && (re ? re.test(f.name) : f.name.indexOf(term) >= 0);
      f.r.setAttribute('fill', m ? 'rgb(230,0,230)' : f.fill);
      f.r.style.fillOpacity = term !== '' && !m ? '0.35' : '';  // dim the rest
      if (m) hits.push(f);
    }
    // A sample under several matching frames (recursion, nested matches) counts once: sum the
    // union of the matches' [start, start + value) ranges.
    hits.sort(function(a, b) { return a.s - b.s; });
    for (var j = 0; j < hits.length; j++) {
      var a = hits[j].s, b = hits[j].s + hits[j].v;
      if (a >= end) { sum += b - a; end = b; }
      else if (b > end) { sum += b - end; end = b; }
    }
    var pct = total > 0 ? sum / total * 100 : 0;
    status.setAttribute('data-matched', term === '' ? '' : pct.toFixed(1));
    status.textContent = term === '' ? '' : 'matched: ' + pct.toFixed(1) + '% of samples';
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
)CSS";

}  // namespace

int FlameValueIndex(const Profile& profile) {
  for (size_t i = 0; i < profile.sample_types.size(); ++i) {
    if (profile.sample_types[i].type == "cpu") return static_cast<int>(i);
  }
  return 0;
}

FlameTree BuildFlameTree(const Profile& profile, int value_index, double min_fraction) {
  FlameTree tree;
  tree.nodes.push_back(FlameNode{});
  if (value_index < 0 || static_cast<size_t>(value_index) >= profile.sample_types.size()) {
    return tree;
  }
  const auto vi = static_cast<size_t>(value_index);
  tree.value_type = profile.sample_types[vi].type;
  tree.value_unit = profile.sample_types[vi].unit;

  std::unordered_map<uint64_t, const Mapping*> mappings;
  std::unordered_map<uint64_t, const Function*> functions;
  for (const Mapping& m : profile.mappings) mappings[m.id] = &m;
  for (const Function& f : profile.functions) functions[f.id] = &f;

  std::map<std::pair<std::string, std::string>, int32_t> frame_ids;  // (name, module)
  auto intern = [&](std::string name, std::string module, bool symbolized) {
    auto [it, inserted] =
        frame_ids.try_emplace({name, module}, static_cast<int32_t>(tree.frames.size()));
    if (inserted) tree.frames.push_back({std::move(name), std::move(module), symbolized});
    return it->second;
  };
  const int32_t unknown = intern("[unknown]", "", false);

  // Each location's frames, outermost first (as ToFolded renders them), by dense index.
  std::unordered_map<uint64_t, int32_t> location_index;
  std::vector<std::vector<int32_t>> location_frames;
  for (const Location& loc : profile.locations) {
    auto m = mappings.find(loc.mapping_id);
    const Mapping* mapping = m != mappings.end() ? m->second : nullptr;
    std::string module = mapping ? Basename(mapping->file) : "";
    location_index[loc.id] = static_cast<int32_t>(location_frames.size());
    std::vector<int32_t>& out = location_frames.emplace_back();
    for (auto it = loc.lines.rbegin(); it != loc.lines.rend(); ++it) {
      auto fn = functions.find(it->function_id);
      std::string name;
      if (fn != functions.end()) {
        name = !fn->second->name.empty() ? fn->second->name : fn->second->system_name;
      }
      if (name.empty()) name = "[unknown]";
      out.push_back(intern(CleanName(std::move(name)), module, true));
    }
    if (out.empty()) {
      std::string name = mapping ? (module.empty() ? "[unknown]" : module) + "+" +
                                       Hex(loc.address - mapping->start + mapping->offset)
                                 : Hex(loc.address);
      out.push_back(intern(CleanName(std::move(name)), module, false));
    }
  }

  // The hot loop below looks up every frame of every sample: ids are usually dense (1..N, as
  // ProfileBuilder and most writers assign them), so index a vector, with the map as fallback.
  std::vector<int32_t> dense_index;
  for (const auto& [id, index] : location_index) {
    if (id >= 4 * location_frames.size() + 1024) continue;
    if (id >= dense_index.size()) dense_index.resize(id + 1, -1);
    dense_index[id] = index;
  }

  // Every sample's stack as frame ids, root first, flattened: stack i is
  // frames[first[i] .. first[i + 1]).
  std::vector<int32_t> frames;
  std::vector<size_t> first{0};
  std::vector<int64_t> values;
  for (const Sample& s : profile.samples) {
    if (vi >= s.values.size() || s.values[vi] <= 0) continue;
    values.push_back(s.values[vi]);
    if (s.location_ids.empty()) frames.push_back(unknown);
    for (auto it = s.location_ids.rbegin(); it != s.location_ids.rend(); ++it) {
      int32_t li = -1;
      if (*it < dense_index.size()) {
        li = dense_index[*it];
      } else if (auto found = location_index.find(*it); found != location_index.end()) {
        li = found->second;
      }
      if (li < 0) {
        frames.push_back(unknown);
        continue;
      }
      const auto& lf = location_frames[static_cast<size_t>(li)];
      if (lf.size() == 1) {
        frames.push_back(lf[0]);
      } else {
        frames.insert(frames.end(), lf.begin(), lf.end());
      }
    }
    first.push_back(frames.size());
  }

  // Top-down: a node owns a contiguous range of `perm` (its samples); grouping that range by the
  // frame one level deeper yields its children. A child below `min_fraction` of the total is
  // kept (its siblings' positions depend on its value) but not expanded, so the work follows
  // what can be drawn rather than the (possibly millions of) distinct stacks.
  const size_t count = values.size();
  std::vector<uint32_t> perm(count), scratch(count);
  for (size_t i = 0; i < count; ++i) perm[i] = static_cast<uint32_t>(i);
  int64_t total = 0;
  for (int64_t v : values) total += v;
  tree.nodes[0].value = total;
  tree.nodes[0].samples = static_cast<int64_t>(count);
  const double min_value = min_fraction * static_cast<double>(total);

  struct Work {
    int32_t node;
    size_t lo, hi;  // range of perm
  };
  std::vector<Work> work{{0, 0, count}};
  std::vector<int32_t> group_of(tree.frames.size(), -1);  // frame → index in `groups`
  struct Group {
    int32_t frame;
    int64_t value = 0;
    size_t size = 0, fill = 0;
  };
  std::vector<Group> groups;
  while (!work.empty()) {
    Work w = work.back();
    work.pop_back();
    const size_t depth = static_cast<size_t>(tree.nodes[static_cast<size_t>(w.node)].depth);
    groups.clear();
    size_t ended = 0;  // samples whose stack ends at this node
    for (size_t i = w.lo; i < w.hi; ++i) {
      uint32_t s = perm[i];
      if (first[s] + depth >= first[s + 1]) {
        ++ended;
        continue;
      }
      int32_t f = frames[first[s] + depth];
      int32_t& g = group_of[static_cast<size_t>(f)];
      if (g < 0) {
        g = static_cast<int32_t>(groups.size());
        groups.push_back({f});
      }
      groups[static_cast<size_t>(g)].value += values[s];
      ++groups[static_cast<size_t>(g)].size;
    }
    if (groups.empty()) continue;
    // Counting sort of the range: ended samples first, then each group contiguously.
    size_t next = w.lo + ended, end_fill = w.lo;
    for (Group& g : groups) {
      g.fill = next;
      next += g.size;
    }
    for (size_t i = w.lo; i < w.hi; ++i) {
      uint32_t s = perm[i];
      if (first[s] + depth >= first[s + 1]) {
        scratch[end_fill++] = s;
      } else {
        Group& g =
            groups[static_cast<size_t>(group_of[static_cast<size_t>(frames[first[s] + depth])])];
        scratch[g.fill++] = s;
      }
    }
    std::copy(scratch.begin() + static_cast<std::ptrdiff_t>(w.lo),
              scratch.begin() + static_cast<std::ptrdiff_t>(w.hi),
              perm.begin() + static_cast<std::ptrdiff_t>(w.lo));
    size_t lo = w.lo + ended;
    for (const Group& g : groups) {
      group_of[static_cast<size_t>(g.frame)] = -1;
      FlameNode n;
      n.frame = g.frame;
      n.parent = w.node;
      n.depth = static_cast<int32_t>(depth) + 1;
      n.value = g.value;
      n.samples = static_cast<int64_t>(g.size);
      int32_t id = static_cast<int32_t>(tree.nodes.size());
      tree.nodes.push_back(n);
      if (static_cast<double>(g.value) >= min_value) work.push_back({id, lo, lo + g.size});
      lo += g.size;
    }
  }
  return tree;
}

std::vector<FlameRect> LayoutFlameGraph(const FlameTree& tree, const FlamegraphOptions& options) {
  std::vector<FlameRect> rects;
  const int64_t total = tree.total();
  if (total <= 0 || options.width_px <= 0) return rects;
  const double px_per_value = options.width_px / static_cast<double>(total);

  // Children lists (CSR) by a counting sort over parents.
  const size_t n = tree.nodes.size();
  std::vector<int32_t> first(n + 1, 0), kids(n > 0 ? n - 1 : 0);
  for (size_t i = 1; i < n; ++i) ++first[static_cast<size_t>(tree.nodes[i].parent) + 1];
  for (size_t i = 0; i < n; ++i) first[i + 1] += first[i];
  {
    std::vector<int32_t> fill(first.begin(), first.end() - 1);
    for (size_t i = 1; i < n; ++i) {
      kids[static_cast<size_t>(fill[static_cast<size_t>(tree.nodes[i].parent)]++)] =
          static_cast<int32_t>(i);
    }
  }
  // Name order, as flamegraph.pl: the rank of each frame's name.
  std::vector<int32_t> order(tree.frames.size()), rank(tree.frames.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const FlameFrame& fa = tree.frames[static_cast<size_t>(a)];
    const FlameFrame& fb = tree.frames[static_cast<size_t>(b)];
    return std::tie(fa.name, fa.module) < std::tie(fb.name, fb.module);
  });
  for (size_t i = 0; i < order.size(); ++i)
    rank[static_cast<size_t>(order[i])] = static_cast<int32_t>(i);

  // Pre-order walk; a pruned node's subtree is never visited, so the cost follows what is drawn.
  std::vector<std::pair<int32_t, int64_t>> stack{{0, 0}};
  std::vector<int32_t> sorted;
  while (!stack.empty()) {
    auto [node, start] = stack.back();
    stack.pop_back();
    const FlameNode& fn = tree.nodes[static_cast<size_t>(node)];
    double width = static_cast<double>(fn.value) * px_per_value;
    if (width < options.min_width_px) continue;
    rects.push_back({node, fn.depth, start, static_cast<double>(start) * px_per_value, width});
    auto begin = kids.begin() + first[static_cast<size_t>(node)];
    auto end = kids.begin() + first[static_cast<size_t>(node) + 1];
    sorted.assign(begin, end);
    std::sort(sorted.begin(), sorted.end(), [&](int32_t a, int32_t b) {
      return rank[static_cast<size_t>(tree.nodes[static_cast<size_t>(a)].frame)] <
             rank[static_cast<size_t>(tree.nodes[static_cast<size_t>(b)].frame)];
    });
    int64_t child_start = start;
    std::vector<std::pair<int32_t, int64_t>> pending;
    for (int32_t c : sorted) {
      pending.push_back({c, child_start});
      child_start += tree.nodes[static_cast<size_t>(c)].value;
    }
    // Reversed so the leftmost child is popped (and emitted) first.
    stack.insert(stack.end(), pending.rbegin(), pending.rend());
  }

  if (rects.size() > options.max_frames) {
    // Keep the widest; ties go to the shallower frame. A child is never wider than its parent
    // and is deeper, so the kept set always includes every kept frame's ancestors.
    std::vector<size_t> idx(rects.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(options.max_frames),
                     idx.end(), [&](size_t a, size_t b) {
                       const FlameRect& ra = rects[a];
                       const FlameRect& rb = rects[b];
                       int64_t va = tree.nodes[static_cast<size_t>(ra.node)].value;
                       int64_t vb = tree.nodes[static_cast<size_t>(rb.node)].value;
                       if (va != vb) return va > vb;
                       if (ra.depth != rb.depth) return ra.depth < rb.depth;
                       return a < b;
                     });
    std::vector<bool> keep(rects.size(), false);
    for (size_t i = 0; i < options.max_frames; ++i) keep[idx[i]] = true;
    std::vector<FlameRect> kept;
    kept.reserve(options.max_frames);
    for (size_t i = 0; i < rects.size(); ++i) {
      if (keep[i]) kept.push_back(rects[i]);
    }
    rects = std::move(kept);
  }
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

// The page shared by the flame graph and the differential flame graph: header, controls, the
// laid-out SVG, `after_svg` (raw HTML) and the zoom/search script.
std::string RenderPage(const FlameTree& tree, const std::vector<FlameRect>& rects,
                       const FlamegraphOptions& options,
                       const std::function<FrameStyle(const FlameNode&, const FlameFrame*)>& style,
                       const std::string& after_svg) {
  const int64_t total = tree.total();
  int max_depth = 0;
  for (const FlameRect& r : rects) max_depth = std::max(max_depth, r.depth);
  const int fh = std::max(options.frame_height_px, 4);
  const int height = (max_depth + 1) * fh;
  const std::string width = FormatDouble(options.width_px, 0);

  std::string out;
  out.reserve(rects.size() * 256 + 8192 + after_svg.size());
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  out += HtmlEscape(options.title);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<h1>";
  out += HtmlEscape(options.title);
  out +=
      "</h1>\n<div id=\"fs-controls\"><button id=\"fs-reset\" type=\"button\">Reset zoom</button>"
      " <form id=\"fs-search-form\" style=\"display:inline\"><input id=\"fs-search\" "
      "type=\"text\" size=\"30\" placeholder=\"search (substring or regex)\"> <button "
      "type=\"submit\">Search</button> <button id=\"fs-clear\" type=\"button\">Clear</button>"
      "</form><div id=\"fs-status\" data-matched=\"\" data-zoomed=\"\"></div></div>\n";
  out += "<div id=\"fs-details\">&nbsp;</div>\n";
  out += "<svg id=\"fs-svg\" width=\"" + width + "\" height=\"" + std::to_string(height) +
         "\" data-width=\"" + width + "\" data-total=\"" + std::to_string(total) + "\">\n";
  for (const FlameRect& r : rects) {
    const FlameNode& node = tree.nodes[static_cast<size_t>(r.node)];
    const FlameFrame* frame =
        node.frame >= 0 ? &tree.frames[static_cast<size_t>(node.frame)] : nullptr;
    const std::string name = frame ? frame->name : "all";
    const std::string y = std::to_string((max_depth - r.depth) * fh);
    FrameStyle fs = style(node, frame);
    out += "<g class=\"f\" id=\"f" + std::to_string(r.node) + "\" data-s=\"" +
           std::to_string(r.start) + "\" data-v=\"" + std::to_string(node.value) + "\" data-d=\"" +
           std::to_string(r.depth) + "\"" + fs.attrs + "><title>";
    out += HtmlEscape(name);
    out += '\n';
    out += HtmlEscape(fs.stats);
    out += "</title><rect x=\"" + FormatDouble(r.x_px, 2) + "\" y=\"" + y + "\" width=\"" +
           FormatDouble(r.width_px, 2) + "\" height=\"" + std::to_string(fh - 1) + "\" fill=\"" +
           fs.fill + "\"/><text x=\"" + FormatDouble(r.x_px + 3, 2) + "\" y=\"" +
           std::to_string((max_depth - r.depth) * fh + fh - 4) + "\">";
    out += HtmlEscape(FitLabel(name, r.width_px));
    out += "</text></g>\n";
  }
  out += "</svg>\n";
  out += after_svg;
  out += "<script>";
  out += kScript;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

double Percent(int64_t value, int64_t total) {
  return total > 0 ? 100.0 * static_cast<double>(value) / static_cast<double>(total) : 0.0;
}

// Self value per function name (module ignored: a function is compared by name across builds).
std::map<std::string, int64_t> SelfByName(const FlameTree& tree) {
  std::vector<int64_t> self(tree.nodes.size());
  for (size_t i = 0; i < tree.nodes.size(); ++i) self[i] = tree.nodes[i].value;
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    self[static_cast<size_t>(tree.nodes[i].parent)] -= tree.nodes[i].value;
  }
  std::map<std::string, int64_t> out;
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    if (self[i] > 0) out[tree.frames[static_cast<size_t>(tree.nodes[i].frame)].name] += self[i];
  }
  return out;
}

std::vector<DiffRow> DiffRows(const FlameTree& base, const FlameTree& now, size_t limit) {
  std::map<std::string, int64_t> b = SelfByName(base), n = SelfByName(now);
  std::map<std::string, DiffRow> rows;
  for (const auto& [name, v] : b) rows[name].base_self_pct = Percent(v, base.total());
  for (const auto& [name, v] : n) rows[name].new_self_pct = Percent(v, now.total());
  std::vector<DiffRow> out;
  out.reserve(rows.size());
  for (auto& [name, row] : rows) {
    row.function = name;
    row.delta_points = row.new_self_pct - row.base_self_pct;
    out.push_back(std::move(row));
  }
  // Largest change first; the map's name order breaks ties deterministically.
  std::stable_sort(out.begin(), out.end(), [](const DiffRow& x, const DiffRow& y) {
    return std::fabs(x.delta_points) > std::fabs(y.delta_points);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
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

}  // namespace

std::string RenderFlamegraphHtml(const Profile& profile, const FlamegraphOptions& options) {
  FlameTree tree = BuildFlameTree(
      profile, FlameValueIndex(profile),
      options.width_px > 0 ? std::max(options.min_width_px, 0.0) / options.width_px : 0.0);
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, options);
  const int64_t total = tree.total();
  auto style = [&](const FlameNode& node, const FlameFrame* frame) {
    std::string s = std::to_string(node.samples) + (node.samples == 1 ? " sample" : " samples");
    if (tree.value_unit == "nanoseconds") {
      s += ", " + FormatDouble(static_cast<double>(node.value) / 1e6, 2) + " ms " + tree.value_type;
    } else if (tree.value_type != "samples") {
      s += ", " + std::to_string(node.value) + " " + tree.value_unit;
    }
    s += ", " + FormatDouble(Percent(node.value, total), 2) + "% of total";
    return FrameStyle{Colour(frame), std::move(s), ""};
  };
  return RenderPage(tree, rects, options, style, "");
}

std::vector<DiffRow> DiffTable(const Profile& base, const Profile& now, size_t limit) {
  return DiffRows(BuildFlameTree(base, FlameValueIndex(base)),
                  BuildFlameTree(now, FlameValueIndex(now)), limit);
}

StatusOr<std::string> RenderDiffFlamegraphHtml(const Profile& base, const Profile& now,
                                               const FlamegraphOptions& options) {
  // Full trees: self shares for the table need every leaf, and base paths must be matched at any
  // depth. The layout still prunes what is too narrow to draw.
  FlameTree bt = BuildFlameTree(base, FlameValueIndex(base));
  FlameTree nt = BuildFlameTree(now, FlameValueIndex(now));
  if (bt.total() > 0 && nt.total() > 0 && bt.value_type != nt.value_type) {
    return Err("cannot compare profiles of different kinds: base has \"" + bt.value_type +
               "\" values, new has \"" + nt.value_type +
               "\"; diff two profiles recorded the same way");
  }
  // Each new node's counterpart in base (same call path of frame names and modules), or -1.
  std::map<std::tuple<int32_t, std::string, std::string>, int32_t> base_child;
  for (size_t i = 1; i < bt.nodes.size(); ++i) {
    const FlameFrame& f = bt.frames[static_cast<size_t>(bt.nodes[i].frame)];
    base_child[{bt.nodes[i].parent, f.name, f.module}] = static_cast<int32_t>(i);
  }
  std::vector<int32_t> match(nt.nodes.size(), -1);
  if (!nt.nodes.empty()) match[0] = 0;
  std::vector<double> delta(nt.nodes.size(), 0), base_pct(nt.nodes.size(), 0);
  // Points at which colours saturate: the largest change, at least 5 so run-to-run noise
  // (1-2 points between two recordings of the same workload) stays pale.
  double scale = 5;
  for (size_t i = 0; i < nt.nodes.size(); ++i) {
    const FlameNode& n = nt.nodes[i];
    if (i > 0) {
      int32_t bp = match[static_cast<size_t>(n.parent)];
      if (bp >= 0) {
        const FlameFrame& f = nt.frames[static_cast<size_t>(n.frame)];
        auto it = base_child.find({bp, f.name, f.module});
        if (it != base_child.end()) match[i] = it->second;
      }
    }
    base_pct[i] =
        match[i] >= 0 ? Percent(bt.nodes[static_cast<size_t>(match[i])].value, bt.total()) : 0;
    // An empty base means there is nothing to compare against: show no change.
    delta[i] = bt.total() > 0 ? Percent(n.value, nt.total()) - base_pct[i] : 0;
    scale = std::max(scale, std::fabs(delta[i]));
  }
  std::vector<FlameRect> rects = LayoutFlameGraph(nt, options);
  auto style = [&](const FlameNode& node, const FlameFrame*) {
    auto i = static_cast<size_t>(&node - nt.nodes.data());
    std::string stats = "base " + FormatDouble(base_pct[i], 2) + "%, new " +
                        FormatDouble(Percent(node.value, nt.total()), 2) + "%, delta " +
                        SignedPoints(delta[i]) + " points";
    return FrameStyle{DiffColour(delta[i], scale), std::move(stats),
                      " data-delta=\"" + SignedPoints(delta[i]) + "\""};
  };

  std::string table =
      "<h2 style=\"font-size:15px\">Functions that changed most (self share of each profile's "
      "total)</h2>\n<table id=\"fs-diff-table\" border=\"1\" cellspacing=\"0\" "
      "cellpadding=\"3\">\n<tr><th>function</th><th>base self %</th><th>new self %</th>"
      "<th>delta (points)</th></tr>\n";
  for (const DiffRow& row : DiffRows(bt, nt, 20)) {
    table += "<tr data-delta=\"" + SignedPoints(row.delta_points) + "\"><td>" +
             HtmlEscape(row.function) + "</td><td>" + FormatDouble(row.base_self_pct, 2) +
             "</td><td>" + FormatDouble(row.new_self_pct, 2) + "</td><td>" +
             SignedPoints(row.delta_points) + "</td></tr>\n";
  }
  table += "</table>\n";
  return RenderPage(nt, rects, options, style, table);
}

Status WriteDiffFlamegraphFile(const std::string& path, const Profile& base, const Profile& now,
                               const FlamegraphOptions& options) {
  StatusOr<std::string> html = RenderDiffFlamegraphHtml(base, now, options);
  if (!html.ok()) return html.status();
  return WriteFileAtomic(path, *html).Annotate("writing differential flame graph " + path);
}

Status WriteFlamegraphFile(const std::string& path, const Profile& profile,
                           const FlamegraphOptions& options) {
  return WriteFileAtomic(path, RenderFlamegraphHtml(profile, options))
      .Annotate("writing flame graph " + path);
}

}  // namespace fs::profile
