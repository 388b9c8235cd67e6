#include "src/report/flamegraph.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "src/base/file_util.h"
#include "src/profile/pprof.h"

namespace fs::profile {
namespace {

// main → A (10+20), main → A → B (20), main → B (25), main → Inl → std::vector<int>::push_back
// (inlined into Inl, 15), main → libc.so.6+0x1234 (unsymbolized, 10): cpu total 100.
Profile SmallProfile() {
  ProfileBuilder b;
  Profile& p = b.profile();
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  uint64_t app = b.AddMapping({.start = 0x400000, .limit = 0x500000, .file = "/usr/bin/app"});
  uint64_t libc = b.AddMapping({.start = 0x7f0000000000,
                                .limit = 0x7f0000100000,
                                .offset = 0x1000,
                                .file = "/lib/libc.so.6"});
  auto fn = [&](const char* name) { return Line{b.InternFunction(name), 1}; };
  uint64_t l_main = b.InternLocation(app, 0x401000, {fn("main")});
  uint64_t l_a = b.InternLocation(app, 0x402000, {fn("A")});
  uint64_t l_b = b.InternLocation(app, 0x403000, {fn("B")});
  uint64_t l_libc = b.InternLocation(libc, 0x7f0000000234);
  // Innermost first, as pprof stores inlined frames.
  uint64_t l_inl = b.InternLocation(app, 0x404000, {fn("std::vector<int>::push_back"), fn("Inl")});
  auto add = [&](std::vector<uint64_t> leaf_first, int64_t cpu) {
    b.AddSample({.location_ids = std::move(leaf_first), .values = {1, cpu}});
  };
  add({l_a, l_main}, 10);
  add({l_a, l_main}, 20);
  add({l_b, l_a, l_main}, 20);
  add({l_b, l_main}, 25);
  add({l_inl, l_main}, 15);
  add({l_libc, l_main}, 10);
  add({l_b, l_main}, 0);  // zero weight: ignored
  return std::move(b).Build();
}

// "main;A;B"-style path of each rect, for readable expectations.
std::map<std::string, FlameRect> RectsByPath(const FlameTree& tree,
                                             const std::vector<FlameRect>& rects) {
  std::map<std::string, FlameRect> out;
  for (const FlameRect& r : rects) {
    std::string path;
    for (int32_t n = r.node; n > 0; n = tree.nodes[static_cast<size_t>(n)].parent) {
      const std::string& name =
          tree.frames[static_cast<size_t>(tree.nodes[static_cast<size_t>(n)].frame)].name;
      path = path.empty() ? name : name + ";" + path;
    }
    out[path.empty() ? "all" : path] = r;
  }
  return out;
}

TEST(FlamegraphTest, ValueIndexPrefersCpu) {
  Profile p = SmallProfile();
  EXPECT_EQ(FlameValueIndex(p), 1);
  p.sample_types = {{"alloc", "bytes"}, {"x", "y"}};
  EXPECT_EQ(FlameValueIndex(p), 0);
}

TEST(FlamegraphTest, LayoutOfSmallProfile) {
  FlameTree tree = BuildFlameTree(SmallProfile(), 1);
  EXPECT_EQ(tree.total(), 100);
  FlamegraphOptions opt;
  opt.width_px = 1000;
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, opt);
  auto by = RectsByPath(tree, rects);
  ASSERT_EQ(by.size(), 8u);
  struct Want {
    const char* path;
    int depth;
    double x, w;
    int64_t samples;
  };
  for (const Want& w : {Want{"all", 0, 0, 1000, 6}, Want{"main", 1, 0, 1000, 6},
                        Want{"main;A", 2, 0, 500, 3}, Want{"main;A;B", 3, 0, 200, 1},
                        Want{"main;B", 2, 500, 250, 1}, Want{"main;Inl", 2, 750, 150, 1},
                        Want{"main;Inl;std::vector<int>::push_back", 3, 750, 150, 1},
                        Want{"main;libc.so.6+0x1234", 2, 900, 100, 1}}) {
    SCOPED_TRACE(w.path);
    ASSERT_TRUE(by.count(w.path));
    const FlameRect& r = by[w.path];
    EXPECT_EQ(r.depth, w.depth);
    EXPECT_DOUBLE_EQ(r.x_px, w.x);
    EXPECT_DOUBLE_EQ(r.width_px, w.w);
    EXPECT_EQ(tree.nodes[static_cast<size_t>(r.node)].samples, w.samples);
  }
  // Parents precede children.
  std::set<int32_t> seen;
  for (const FlameRect& r : rects) {
    int32_t parent = tree.nodes[static_cast<size_t>(r.node)].parent;
    if (parent >= 0) {
      EXPECT_TRUE(seen.count(parent));
    }
    seen.insert(r.node);
  }
  // Module and symbolization feed the colours.
  const FlameNode& libc = tree.nodes[static_cast<size_t>(by["main;libc.so.6+0x1234"].node)];
  EXPECT_FALSE(tree.frames[static_cast<size_t>(libc.frame)].symbolized);
  EXPECT_EQ(tree.frames[static_cast<size_t>(libc.frame)].module, "libc.so.6");
  const FlameNode& a = tree.nodes[static_cast<size_t>(by["main;A"].node)];
  EXPECT_TRUE(tree.frames[static_cast<size_t>(a.frame)].symbolized);
  EXPECT_EQ(tree.frames[static_cast<size_t>(a.frame)].module, "app");
}

TEST(FlamegraphTest, PrunesNarrowFrames) {
  FlameTree tree = BuildFlameTree(SmallProfile(), 1);
  FlamegraphOptions opt;
  opt.width_px = 1000;
  opt.min_width_px = 120;  // drops the 100 px libc frame only
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, opt));
  EXPECT_EQ(by.size(), 7u);
  EXPECT_FALSE(by.count("main;libc.so.6+0x1234"));
  EXPECT_DOUBLE_EQ(by["main;Inl"].x_px, 750);  // positions unchanged by pruning
  // A tree built pruned (callees of narrow frames never expanded) lays out identically.
  FlameTree pruned = BuildFlameTree(SmallProfile(), 1, 0.12);
  // Below 16% main;Inl (15%) stays a leaf: its inlined callee is never built.
  EXPECT_EQ(BuildFlameTree(SmallProfile(), 1, 0.16).nodes.size(), tree.nodes.size() - 1);
  auto by_pruned = RectsByPath(pruned, LayoutFlameGraph(pruned, opt));
  ASSERT_EQ(by_pruned.size(), by.size());
  for (const auto& [path, r] : by) {
    EXPECT_DOUBLE_EQ(by_pruned[path].x_px, r.x_px) << path;
    EXPECT_DOUBLE_EQ(by_pruned[path].width_px, r.width_px) << path;
  }
  opt.min_width_px = 0;
  opt.max_frames = 3;  // widest three: all, main, main;A
  by = RectsByPath(tree, LayoutFlameGraph(tree, opt));
  EXPECT_EQ(by.size(), 3u);
  EXPECT_TRUE(by.count("all") && by.count("main") && by.count("main;A"));
}

TEST(FlamegraphTest, EmptyProfile) {
  Profile p;
  p.sample_types = {{"cpu", "nanoseconds"}};
  std::string html = RenderFlamegraphHtml(p, {});
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<rect"), std::string::npos);
}

TEST(FlamegraphTest, EscapesHtml) {
  EXPECT_EQ(HtmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  Profile p = SmallProfile();
  p.functions[1].name = "operator<(Foo&, Bar const&)";  // "A"
  FlamegraphOptions opt;
  opt.title = "<script>alert(1)</script>";
  std::string html = RenderFlamegraphHtml(p, opt);
  EXPECT_NE(html.find("std::vector&lt;int&gt;::push_back"), std::string::npos);
  EXPECT_NE(html.find("operator&lt;(Foo&amp;, Bar const&amp;)"), std::string::npos);
  EXPECT_EQ(html.find("vector<int>"), std::string::npos);
  EXPECT_EQ(html.find("operator<("), std::string::npos);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
}

TEST(FlamegraphTest, SelfContained) {
  std::string html = RenderFlamegraphHtml(SmallProfile(), {});
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("import("), std::string::npos);
  EXPECT_NE(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("Reset zoom"), std::string::npos);
}

TEST(FlamegraphTest, WritesFileAtomicallyFromPprof) {
  std::string dir = ::testing::TempDir() + "/fg_write";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WritePprofFile(dir + "/p.prof", SmallProfile()).ok());
  auto p = ReadPprofFile(dir + "/p.prof");
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_TRUE(WriteFlamegraphFile(dir + "/p.html", *p, {}).ok());
  auto html = ReadFile(dir + "/p.html");
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(*html, RenderFlamegraphHtml(SmallProfile(), {}));
  EXPECT_FALSE(WriteFlamegraphFile(dir + "/no/such/dir/p.html", *p, {}).ok());
  std::filesystem::remove_all(dir);
}

// 200k samples of random stacks 5..40 deep over 3000 functions: the tree has about a million
// nodes, nearly all far below a pixel.
Profile BigProfile() {
  ProfileBuilder b;
  b.profile().sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  uint64_t m = b.AddMapping({.start = 0x400000, .limit = 0x10000000, .file = "/usr/bin/big"});
  std::mt19937_64 rng(42);
  std::vector<uint64_t> locs;
  for (int i = 0; i < 3000; ++i) {
    std::vector<Line> lines;
    if (i % 10 != 0) {  // every tenth unsymbolized
      lines.push_back({b.InternFunction("ns::Func" + std::to_string(i) + "<T>"), 1});
    }
    locs.push_back(b.InternLocation(m, 0x400000 + 16 * static_cast<uint64_t>(i), lines));
  }
  for (int s = 0; s < 200000; ++s) {
    size_t depth = 5 + rng() % 36;
    std::vector<uint64_t> stack(depth);
    // Skewed towards low indexes near the root so the top of the graph has structure.
    for (size_t d = 0; d < depth; ++d) {
      stack[depth - 1 - d] = locs[rng() % std::min<size_t>(locs.size(), 3 + d * d * 4)];
    }
    b.AddSample({.location_ids = stack, .values = {1, 10101010}});
  }
  return std::move(b).Build();
}

TEST(FlamegraphTest, BigProfileStaysSmallAndFast) {
  Profile p = BigProfile();
  auto t0 = std::chrono::steady_clock::now();
  std::string html = RenderFlamegraphHtml(p, {});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  FlamegraphOptions opt;
  FlameTree tree = BuildFlameTree(p, 1, opt.min_width_px / opt.width_px);
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, opt);
  size_t rect_count = 0;
  for (size_t pos = 0; (pos = html.find("<rect", pos)) != std::string::npos; ++pos) ++rect_count;
  printf("big profile: %zu tree nodes, %zu frames drawn, %zu bytes of HTML, %.3f s\n",
         tree.nodes.size(), rect_count, html.size(), seconds);
  EXPECT_EQ(tree.nodes[0].samples, 200000);
  EXPECT_EQ(rect_count, rects.size());
  EXPECT_LE(rects.size(), opt.max_frames);
  for (const FlameRect& r : rects) EXPECT_GE(r.width_px, opt.min_width_px);
  EXPECT_LT(html.size(), 5u << 20);
#if defined(__SANITIZE_ADDRESS__)
  const double kLimit = 15;  // asan+ubsan builds run several times slower
#else
  const double kLimit = 2;
#endif
  EXPECT_LT(seconds, kLimit);
}

// ---- Headless Chromium: the page's script really runs, zooms and searches. ----

constexpr const char* kChromium = "/usr/bin/chromium";

// Runs chromium --dump-dom on `url`; returns the serialised DOM, or "" on failure/timeout.
std::string DumpDom(const std::string& url, const std::string& tmp) {
  std::string out_path = tmp + "/dom.html";
  std::string profile_dir = tmp + "/chromium-profile";
  std::filesystem::create_directories(profile_dir);
  std::vector<std::string> args = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--user-data-dir=" + profile_dir,
                                   "--virtual-time-budget=5000",
                                   "--dump-dom",
                                   url};
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so a timeout kills the renderer processes too
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0 || null < 0) _exit(127);
    dup2(out, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kChromium, argv.data());
    _exit(127);
  }
  if (pid < 0) return "";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "chromium timed out on " << url;
      return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(-pid, SIGKILL);  // stray children of the group, if any
  auto dom = ReadFile(out_path);
  return dom.ok() ? *dom : "";
}

// The value of `attr` on the first <tag> after the element with id `id`.
std::string AttrAfterId(const std::string& dom, const std::string& id, const std::string& tag,
                        const std::string& attr) {
  size_t pos = dom.find("id=\"" + id + "\"");
  if (pos == std::string::npos) return "<no " + id + ">";
  if (!tag.empty()) pos = dom.find("<" + tag, pos);
  if (pos == std::string::npos) return "<no " + tag + ">";
  size_t end = dom.find('>', pos);
  size_t a = dom.find(" " + attr + "=\"", pos);
  if (a == std::string::npos || a > end) return "";
  a += attr.size() + 3;
  return dom.substr(a, dom.find('"', a) - a);
}

TEST(FlamegraphBrowserTest, ZoomAndSearchRunInHeadlessChromium) {
  if (access(kChromium, X_OK) != 0) {
    GTEST_SKIP() << kChromium << " not installed (apt-get install chromium)";
  }
  char tmpl[] = "/tmp/fs_flamegraph_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string tmp = tmpl;
  Profile p = SmallProfile();
  ASSERT_TRUE(WriteFlamegraphFile(tmp + "/fg.html", p, {}).ok());
  FlameTree tree = BuildFlameTree(p, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));
  std::string id_a = "f" + std::to_string(by["main;A"].node);
  std::string id_ab = "f" + std::to_string(by["main;A;B"].node);
  std::string id_main = "f" + std::to_string(by["main"].node);
  std::string id_b = "f" + std::to_string(by["main;B"].node);

  // Unzoomed, searching "A|B" (a regex): main;A (50) contains main;A;B (20), counted once,
  // plus main;B (25) = 75%.
  std::string dom = DumpDom("file://" + tmp + "/fg.html#search=A%7CB", tmp);
  ASSERT_FALSE(dom.empty()) << "chromium produced no DOM";
  size_t rects = 0;
  for (size_t pos = 0; (pos = dom.find("<rect", pos)) != std::string::npos; ++pos) ++rects;
  EXPECT_EQ(rects, 8u);
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-ready"), "1");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched"), "75.0");
  EXPECT_NE(dom.find("matched: 75.0% of samples"), std::string::npos);
  EXPECT_EQ(AttrAfterId(dom, id_b, "rect", "fill"), "rgb(230,0,230)");

  // Zoomed on main;A: it and its ancestors span the full width, main;A;B scales up to 40%,
  // main;B (not on the path) is hidden. Substring search for B: 20 + 25 = 45%.
  dom = DumpDom("file://" + tmp + "/fg.html#zoom=" + id_a + "&search=B", tmp);
  ASSERT_FALSE(dom.empty());
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-zoomed"), id_a);
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched"), "45.0");
  EXPECT_EQ(AttrAfterId(dom, id_a, "rect", "width"), "1200.00");
  EXPECT_EQ(AttrAfterId(dom, id_main, "rect", "width"), "1200.00");
  EXPECT_EQ(AttrAfterId(dom, id_ab, "rect", "width"), "480.00");
  EXPECT_NE(AttrAfterId(dom, id_b, "", "style").find("display: none"), std::string::npos);
  std::filesystem::remove_all(tmp);
}

// ---- Differential flame graph. ----

// main → A (a) and main → B (b), plus main → Only (only) when only > 0; cpu values, `scale` ×.
Profile TwoFunctionProfile(int64_t a, int64_t b, int64_t only = 0, int64_t scale = 1,
                           const std::string& b_name = "B") {
  ProfileBuilder builder;
  builder.profile().sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  uint64_t app = builder.AddMapping({.start = 0x400000, .limit = 0x500000, .file = "/bin/app"});
  auto loc = [&](const std::string& name, uint64_t addr) {
    return builder.InternLocation(app, addr, {Line{builder.InternFunction(name), 1}});
  };
  uint64_t l_main = loc("main", 0x401000);
  uint64_t l_a = loc("A", 0x402000);
  uint64_t l_b = loc(b_name, 0x403000);
  uint64_t l_only = loc("Only", 0x404000);
  auto add = [&](uint64_t leaf, int64_t v) {
    if (v > 0) builder.AddSample({.location_ids = {leaf, l_main}, .values = {1, v * scale}});
  };
  add(l_a, a);
  add(l_b, b);
  add(l_only, only);
  return std::move(builder).Build();
}

const DiffRow* FindRow(const std::vector<DiffRow>& rows, const std::string& name) {
  for (const DiffRow& r : rows) {
    if (r.function == name) return &r;
  }
  return nullptr;
}

// "rgb(r,g,b)" → {r, g, b}.
std::vector<int> Rgb(const std::string& fill) {
  int r = -1, g = -1, b = -1;
  EXPECT_EQ(std::sscanf(fill.c_str(), "rgb(%d,%d,%d)", &r, &g, &b), 3) << fill;
  return {r, g, b};
}

TEST(DiffFlamegraphTest, TableShowsShareChanges) {
  std::vector<DiffRow> rows = DiffTable(TwoFunctionProfile(75, 25), TwoFunctionProfile(25, 75));
  ASSERT_EQ(rows.size(), 2u);  // main has no self time
  const DiffRow* a = FindRow(rows, "A");
  const DiffRow* b = FindRow(rows, "B");
  ASSERT_TRUE(a && b);
  EXPECT_DOUBLE_EQ(b->base_self_pct, 25);
  EXPECT_DOUBLE_EQ(b->new_self_pct, 75);
  EXPECT_DOUBLE_EQ(b->delta_points, 50);
  EXPECT_DOUBLE_EQ(a->delta_points, -50);
  // Ties in |delta| go by name.
  EXPECT_EQ(rows[0].function, "A");
}

TEST(DiffFlamegraphTest, FramesColouredByChange) {
  Profile base = TwoFunctionProfile(75, 25), now = TwoFunctionProfile(25, 75);
  auto html = RenderDiffFlamegraphHtml(base, now, {});
  ASSERT_TRUE(html.ok()) << html.status().message();
  FlameTree tree = BuildFlameTree(now, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));
  std::string id_a = "f" + std::to_string(by["main;A"].node);
  std::string id_b = "f" + std::to_string(by["main;B"].node);
  std::string id_main = "f" + std::to_string(by["main"].node);
  EXPECT_EQ(AttrAfterId(*html, id_b, "", "data-delta"), "+50.00");
  EXPECT_EQ(AttrAfterId(*html, id_a, "", "data-delta"), "-50.00");
  EXPECT_EQ(AttrAfterId(*html, id_main, "", "data-delta"), "0.00");
  std::vector<int> b = Rgb(AttrAfterId(*html, id_b, "rect", "fill"));
  std::vector<int> a = Rgb(AttrAfterId(*html, id_a, "rect", "fill"));
  EXPECT_GT(b[0], b[1] + 100);  // red-ish
  EXPECT_EQ(b[1], b[2]);
  EXPECT_GT(a[2], a[0] + 100);  // blue-ish
  EXPECT_EQ(a[0], a[1]);
  std::vector<int> m = Rgb(AttrAfterId(*html, id_main, "rect", "fill"));
  EXPECT_EQ(m[0], m[2]);  // neutral grey
  EXPECT_NE(html->find("base 25.00%, new 75.00%, delta +50.00 points"), std::string::npos);
  EXPECT_NE(html->find("<table id=\"fs-diff-table\""), std::string::npos);
  EXPECT_NE(html->find("<td>B</td><td>25.00</td><td>75.00</td><td>+50.00</td>"), std::string::npos);
  // Self-contained, same controls and script as the flame graph.
  EXPECT_EQ(html->find("http://"), std::string::npos);
  EXPECT_EQ(html->find("https://"), std::string::npos);
  EXPECT_EQ(html->find(" src="), std::string::npos);
  EXPECT_NE(html->find("Reset zoom"), std::string::npos);
  EXPECT_NE(html->find("<script>"), std::string::npos);
}

TEST(DiffFlamegraphTest, BaseOnlyFunctionInTableNotGraph) {
  Profile base = TwoFunctionProfile(40, 40, 20), now = TwoFunctionProfile(50, 50);
  std::vector<DiffRow> rows = DiffTable(base, now);
  const DiffRow* only = FindRow(rows, "Only");
  ASSERT_NE(only, nullptr);
  EXPECT_DOUBLE_EQ(only->base_self_pct, 20);
  EXPECT_DOUBLE_EQ(only->new_self_pct, 0);
  EXPECT_DOUBLE_EQ(only->delta_points, -20);
  auto html = RenderDiffFlamegraphHtml(base, now, {});
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->find("<title>Only"), std::string::npos);
  EXPECT_NE(html->find("<td>Only</td><td>20.00</td><td>0.00</td><td>-20.00</td>"),
            std::string::npos);
  // A frame only in NEW counts from 0% in base.
  auto added = RenderDiffFlamegraphHtml(now, base, {});
  ASSERT_TRUE(added.ok());
  EXPECT_NE(added->find("<title>Only\nbase 0.00%, new 20.00%, delta +20.00 points"),
            std::string::npos);
}

TEST(DiffFlamegraphTest, NormalisesEachProfileToItsTotal) {
  Profile base = TwoFunctionProfile(75, 25), now = TwoFunctionProfile(75, 25, 0, 10);
  for (const DiffRow& r : DiffTable(base, now)) {
    EXPECT_DOUBLE_EQ(r.delta_points, 0) << r.function;
  }
  auto html = RenderDiffFlamegraphHtml(base, now, {});
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->find("data-delta=\"+"), std::string::npos);
  EXPECT_EQ(html->find("data-delta=\"-"), std::string::npos);
  EXPECT_NE(html->find("data-delta=\"0.00\""), std::string::npos);
}

TEST(DiffFlamegraphTest, EscapesHtml) {
  Profile base = TwoFunctionProfile(75, 25, 0, 1, "operator<(Foo&)");
  Profile now = TwoFunctionProfile(25, 75, 0, 1, "operator<(Foo&)");
  FlamegraphOptions opt;
  opt.title = "<script>alert(1)</script>";
  auto html = RenderDiffFlamegraphHtml(base, now, opt);
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->find("operator<("), std::string::npos);
  EXPECT_NE(html->find("<td>operator&lt;(Foo&amp;)</td>"), std::string::npos);
  EXPECT_NE(html->find("<title>operator&lt;(Foo&amp;)\n"), std::string::npos);
  EXPECT_EQ(html->find("<script>alert"), std::string::npos);
}

TEST(DiffFlamegraphTest, RejectsDifferentValueTypes) {
  Profile base = TwoFunctionProfile(75, 25);
  Profile now = TwoFunctionProfile(25, 75);
  now.sample_types = {{"alloc", "bytes"}, {"x", "y"}};
  auto html = RenderDiffFlamegraphHtml(base, now, {});
  ASSERT_FALSE(html.ok());
  EXPECT_NE(html.status().message().find("different kinds"), std::string::npos);
}

// Runs `framescope` (built beside this test) with `args`; returns its exit code, or -1 when the
// binary is missing.
int RunFramescope(const std::string& args) {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "framescope";
  if (access(exe.c_str(), X_OK) != 0) return -1;
  int status = std::system((exe + " " + args + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

TEST(DiffFlamegraphTest, CliExitCodes) {
  std::string dir = ::testing::TempDir() + "/fg_diff_cli";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WritePprofFile(dir + "/a.prof", TwoFunctionProfile(75, 25)).ok());
  ASSERT_TRUE(WritePprofFile(dir + "/b.prof", TwoFunctionProfile(25, 75)).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/corrupt.prof", "not a profile \x01\x02\xff").ok());
  int rc = RunFramescope("diff " + dir + "/a.prof " + dir + "/b.prof -o " + dir + "/d.html");
  if (rc == -1) GTEST_SKIP() << "framescope binary not built beside the test";
  EXPECT_EQ(rc, 0);
  auto html = ReadFile(dir + "/d.html");
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(*html,
            *RenderDiffFlamegraphHtml(TwoFunctionProfile(75, 25), TwoFunctionProfile(25, 75), [&] {
              FlamegraphOptions o;
              o.title = "Diff: " + dir + "/a.prof -> " + dir + "/b.prof";
              return o;
            }()));
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof " + dir + "/missing.prof -o " + dir + "/x.html"),
            1);
  EXPECT_EQ(RunFramescope("diff " + dir + "/corrupt.prof " + dir + "/b.prof -o " + dir + "/x.html"),
            1);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.html"));
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof"), 2);
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof " + dir + "/b.prof " + dir + "/c.prof"), 2);
  std::filesystem::remove_all(dir);
}

TEST(FlamegraphBrowserTest, DiffPageScriptRunsInHeadlessChromium) {
  if (access(kChromium, X_OK) != 0) {
    GTEST_SKIP() << kChromium << " not installed (apt-get install chromium)";
  }
  char tmpl[] = "/tmp/fs_diff_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string tmp = tmpl;
  Profile now = TwoFunctionProfile(25, 75);
  ASSERT_TRUE(WriteDiffFlamegraphFile(tmp + "/d.html", TwoFunctionProfile(75, 25), now, {}).ok());
  FlameTree tree = BuildFlameTree(now, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));
  std::string id_b = "f" + std::to_string(by["main;B"].node);
  // Zoomed on main;B (75%): it spans the full width; search "B" matches 75%.
  std::string dom = DumpDom("file://" + tmp + "/d.html#zoom=" + id_b + "&search=B", tmp);
  ASSERT_FALSE(dom.empty()) << "chromium produced no DOM";
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-ready"), "1");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-zoomed"), id_b);
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched"), "75.0");
  EXPECT_EQ(AttrAfterId(dom, id_b, "rect", "width"), "1200.00");
  EXPECT_NE(dom.find("fs-diff-table"), std::string::npos);
  std::filesystem::remove_all(tmp);
}

}  // namespace
}  // namespace fs::profile
