#include "src/report/flamegraph.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/profile/pprof.h"
#include "src/profile/test_profiles.h"

namespace fs::profile {
namespace {

// main → A (10+20 ms), main → A → B (20), main → B (25), main → Inl → std::vector<int>::push_back
// (inlined into Inl, 15), main → libc.so.6+0x1234 (unsymbolized, 10): 100 ms of CPU time in 14
// samples (records stand for 1-5 samples each).
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
  auto add = [&](std::vector<uint64_t> leaf_first, int64_t samples, int64_t cpu_ms) {
    b.AddSample({.location_ids = std::move(leaf_first), .values = {samples, cpu_ms * 1000000}});
  };
  add({l_a, l_main}, 1, 10);
  add({l_a, l_main}, 2, 20);
  add({l_b, l_a, l_main}, 2, 20);
  add({l_b, l_main}, 5, 25);
  add({l_inl, l_main}, 3, 15);
  add({l_libc, l_main}, 1, 10);
  add({l_b, l_main}, 4, 0);  // zero weight: ignored
  return std::move(b).Build();
}

// "main;A;B"-style path of each rect, for readable expectations.
std::map<std::string, FlameRect> RectsByPath(const CallTree& tree,
                                             const std::vector<FlameRect>& rects) {
  std::map<std::string, FlameRect> out;
  for (const FlameRect& r : rects) {
    std::string path;
    for (int32_t n = r.node; n > 0; n = tree.nodes[static_cast<size_t>(n)].parent) {
      path = path.empty() ? tree.NameOf(n) : tree.NameOf(n) + ";" + path;
    }
    out[path.empty() ? "all" : path] = r;
  }
  return out;
}

std::string FrameId(const std::map<std::string, FlameRect>& by, const std::string& path) {
  auto it = by.find(path);
  return it == by.end() ? "<no " + path + ">" : "f" + std::to_string(it->second.node);
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

// The text content of the first <tag> after the element with id `id`.
std::string TextAfterId(const std::string& dom, const std::string& id, const std::string& tag) {
  size_t pos = dom.find("id=\"" + id + "\"");
  if (pos == std::string::npos) return "<no " + id + ">";
  pos = dom.find("<" + tag, pos);
  if (pos == std::string::npos) return "<no " + tag + ">";
  pos = dom.find('>', pos) + 1;
  return dom.substr(pos, dom.find("</" + tag + ">", pos) - pos);
}

// The text inside the element with id `id`, up to its first child tag.
std::string OwnText(const std::string& dom, const std::string& id) {
  size_t pos = dom.find("id=\"" + id + "\"");
  if (pos == std::string::npos) return "<no " + id + ">";
  pos = dom.find('>', pos) + 1;
  return dom.substr(pos, dom.find('<', pos) - pos);
}

TEST(FlamegraphTest, LayoutOfSmallProfile) {
  Profile p = SmallProfile();
  CallTree tree = BuildCallTree(p, DisplayValueIndex(p));
  EXPECT_EQ(tree.total(), 100000000);
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
  for (const Want& w : {Want{"all", 0, 0, 1000, 14}, Want{"main", 1, 0, 1000, 14},
                        Want{"main;A", 2, 0, 500, 5}, Want{"main;A;B", 3, 0, 200, 2},
                        Want{"main;B", 2, 500, 250, 5}, Want{"main;Inl", 2, 750, 150, 3},
                        Want{"main;Inl;std::vector<int>::push_back", 3, 750, 150, 3},
                        Want{"main;libc.so.6+0x1234", 2, 900, 100, 1}}) {
    SCOPED_TRACE(w.path);
    ASSERT_TRUE(by.count(w.path));
    const FlameRect& r = by[w.path];
    EXPECT_EQ(r.depth, w.depth);
    EXPECT_DOUBLE_EQ(r.x_px, w.x);
    EXPECT_DOUBLE_EQ(r.width_px, w.w);
    EXPECT_EQ(r.levels_cut, 0);
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
  const CallNode& libc = tree.nodes[static_cast<size_t>(by["main;libc.so.6+0x1234"].node)];
  EXPECT_FALSE(tree.frames[static_cast<size_t>(libc.frame)].symbolized);
  EXPECT_EQ(tree.frames[static_cast<size_t>(libc.frame)].module, "libc.so.6");
  const CallNode& a = tree.nodes[static_cast<size_t>(by["main;A"].node)];
  EXPECT_TRUE(tree.frames[static_cast<size_t>(a.frame)].symbolized);
  EXPECT_EQ(tree.frames[static_cast<size_t>(a.frame)].module, "app");
}

TEST(FlamegraphTest, PrunesNarrowFrames) {
  CallTree tree = BuildCallTree(SmallProfile(), 1);
  FlamegraphOptions opt;
  opt.width_px = 1000;
  opt.min_width_px = 120;  // drops the 100 px libc frame only
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, opt));
  EXPECT_EQ(by.size(), 7u);
  EXPECT_FALSE(by.count("main;libc.so.6+0x1234"));
  EXPECT_DOUBLE_EQ(by["main;Inl"].x_px, 750);  // positions unchanged by pruning
  // A tree built pruned (callees of narrow frames never expanded) lays out identically.
  CallTree pruned = BuildCallTree(SmallProfile(), 1, 0.12);
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

// "main;[anon]+0x3ed300;[anon]+0x3eda00;..." `levels` frames deep under main, as junk return
// addresses into the heap unwind.
std::string CyclicJunk(int levels) {
  std::string path = "main";
  for (int i = 0; i < levels; ++i) path += i % 2 ? ";[anon]+0x3eda00" : ";[anon]+0x3ed300";
  return path;
}

TEST(FlamegraphTest, DepthCapLeavesOneMarker) {
  Profile p = ProfileFromStacks({{CyclicJunk(300), 3, 30}, {"main;Work", 1, 70}});
  CallTree tree = BuildCallTree(p, 1);
  FlamegraphOptions opt;
  opt.max_depth = 40;
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, opt);
  int deepest = 0, cut = 0;
  for (const FlameRect& r : rects) {
    deepest = std::max(deepest, r.depth);
    if (r.levels_cut > 0) {
      ++cut;
      EXPECT_EQ(r.depth, 40);
      EXPECT_EQ(r.levels_cut, 301 - 40);  // main is level 1, the last junk frame level 301
    }
  }
  EXPECT_EQ(deepest, 40);
  EXPECT_EQ(cut, 1);
  std::string html = RenderFlamegraphHtml(p, opt);
  EXPECT_NE(html.find("<title>[261 levels not drawn]\n"), std::string::npos);
  // 41 levels of frames and one of markers.
  EXPECT_NE(html.find("<svg id=\"fs-svg\" width=\"1200\" height=\"" + std::to_string(42 * 16)),
            std::string::npos);
  opt.max_depth = 1000;
  for (const FlameRect& r : LayoutFlameGraph(tree, opt)) EXPECT_EQ(r.levels_cut, 0);
}

// Icicle: level d is drawn at y = d * frame height, the root at the top.
TEST(FlamegraphTest, RootOnTop) {
  Profile p = SmallProfile();
  CallTree tree = BuildCallTree(p, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));
  std::string html = RenderFlamegraphHtml(p, {});
  EXPECT_EQ(AttrAfterId(html, FrameId(by, "all"), "rect", "y"), "0");
  EXPECT_EQ(AttrAfterId(html, FrameId(by, "main"), "rect", "y"), "16");
  EXPECT_EQ(AttrAfterId(html, FrameId(by, "main;A;B"), "rect", "y"), "48");
}

// Counts say what they are: samples are the sum of the samples values (14, from 6 records),
// CPU time and its share are named as such.
TEST(FlamegraphTest, LabelsCountSamplesAndCpuTime) {
  Profile p = SmallProfile();
  CallTree tree = BuildCallTree(p, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));
  std::string html = RenderFlamegraphHtml(p, {});
  EXPECT_EQ(TextAfterId(html, "f0", "text"), "all: 14 samples, 100.00 ms CPU time");
  EXPECT_EQ(TextAfterId(html, "f0", "title"),
            "all\n14 samples, 100.00 ms CPU time, 100.00% of CPU time");
  EXPECT_EQ(TextAfterId(html, FrameId(by, "main;A"), "title"),
            "A\n5 samples, 50.00 ms CPU time, 50.00% of CPU time");
  EXPECT_EQ(TextAfterId(html, FrameId(by, "main;libc.so.6+0x1234"), "title"),
            "libc.so.6+0x1234\n1 sample, 10.00 ms CPU time, 10.00% of CPU time");
  EXPECT_NE(html.find("<div id=\"fs-summary\">14 samples, 100.00 ms CPU time. "),
            std::string::npos);
  EXPECT_EQ(AttrAfterId(html, "fs-svg", "", "data-total-samples"), "14");
  // A profile of sample counts only: the count is the value, stated once.
  Profile counts = ProfileFromStacks({{"main", 4510, 0}});
  counts.sample_types.resize(1);
  for (Sample& s : counts.samples) s.values.resize(1);
  EXPECT_EQ(TextAfterId(RenderFlamegraphHtml(counts, {}), "f0", "title"),
            "all\n4,510 samples, 100.00% of samples");
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

// CPU time of this thread: unlike wall time, it does not grow when other processes share the
// cores (the render is single-threaded).
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The work must follow what is drawn, not the profile's million distinct stacks. Checked by size
// (the tree built for drawing expands no node too narrow to draw) and by this thread's CPU time,
// which load on other cores does not inflate (about 0.4 s in a debug build, 1.5 s under asan).
TEST(FlamegraphTest, BigProfileStaysSmallAndFast) {
  Profile p = BigProfile();
  const double t0 = ThreadCpuSeconds();
  std::string html = RenderFlamegraphHtml(p, {});
  const double cpu_seconds = ThreadCpuSeconds() - t0;
  FlamegraphOptions opt;
  CallTree tree = BuildCallTree(p, 1, opt.min_width_px / opt.width_px);
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, opt);
  size_t rect_count = 0;
  for (size_t pos = 0; (pos = html.find("<rect", pos)) != std::string::npos; ++pos) ++rect_count;
  printf("big profile: %zu tree nodes, %zu frames drawn, %zu bytes of HTML, %.3f s CPU\n",
         tree.nodes.size(), rect_count, html.size(), cpu_seconds);
  EXPECT_EQ(tree.total_samples(), 200000);
  EXPECT_EQ(rect_count, rects.size());
  EXPECT_LE(rects.size(), opt.max_frames);
  for (const FlameRect& r : rects) EXPECT_GE(r.width_px, opt.min_width_px);
  // Only nodes wide enough to draw are expanded: every parent in the tree is a drawn frame.
  std::set<int32_t> parents;
  for (const CallNode& n : tree.nodes) parents.insert(n.parent);
  parents.erase(-1);
  EXPECT_LE(parents.size(), rects.size());
  // The page was drawn from such a tree too: its frame ids are node indexes of the tree built.
  int64_t max_id = -1;
  for (size_t pos = 0; (pos = html.find(" id=\"f", pos)) != std::string::npos; ++pos) {
    max_id = std::max<int64_t>(max_id, std::atoll(html.c_str() + pos + 6));
  }
  EXPECT_GE(max_id, 0);
  EXPECT_LT(max_id, static_cast<int64_t>(tree.nodes.size()));
  EXPECT_LT(html.size(), 5u << 20);
#if defined(__SANITIZE_ADDRESS__)
  const double kLimit = 15;  // asan+ubsan builds run several times slower
#else
  const double kLimit = 2;
#endif
  EXPECT_LT(cpu_seconds, kLimit);
}

// ---- Headless Chromium: the page's script really runs, zooms and searches. ----

constexpr const char* kChromium = "/usr/bin/chromium";

// Runs chromium --dump-dom on `url` in a 1280x800 window; returns the serialised DOM, or "" on
// failure/timeout. Fails the test when chromium is missing: scripts/install-deps.sh installs it,
// and the pages' scripts are otherwise untested.
std::string DumpDom(const std::string& url, const std::string& tmp) {
  if (access(kChromium, X_OK) != 0) {
    ADD_FAILURE() << kChromium << " is not installed; run scripts/install-deps.sh "
                  << "(apt-get install chromium)";
    return "";
  }
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
                                   "--window-size=1280,800",
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
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
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

// A fresh directory under /tmp, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fs_flamegraph_XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(FlamegraphBrowserTest, ZoomAndSearchRunInHeadlessChromium) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  Profile p = SmallProfile();
  ASSERT_TRUE(WriteFlamegraphFile(tmp.path() + "/fg.html", p, {}).ok());
  CallTree tree = BuildCallTree(p, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));

  // Unzoomed, the regex /A|B/: main;A (5 samples, 50 ms) contains main;A;B, counted once, plus
  // main;B (5 samples, 25 ms): 10 of 14 samples, 75% of CPU time.
  std::string dom = DumpDom("file://" + tmp.path() + "/fg.html#search=%2FA%7CB%2F", tmp.path());
  ASSERT_FALSE(dom.empty()) << "chromium produced no DOM";
  size_t rects = 0;
  for (size_t pos = 0; (pos = dom.find("<rect", pos)) != std::string::npos; ++pos) ++rects;
  EXPECT_EQ(rects, 8u);
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-ready"), "1");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-search-mode"), "regex");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-samples"), "10");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-samples-pct"), "71.4");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-value-pct"), "75.0");
  EXPECT_NE(dom.find("matched 10 of 14 samples (71.4%), 75.0% of CPU time"), std::string::npos);
  EXPECT_EQ(AttrAfterId(dom, FrameId(by, "main;B"), "rect", "fill"), "rgb(230,0,230)");

  // Zoomed on main;A: it and its ancestors span the full width, main;A;B scales up to 40%,
  // main;B (not on the path) is hidden. Literal search for B: 2 + 5 samples, 20 + 25 = 45 ms.
  const std::string id_a = FrameId(by, "main;A");
  dom = DumpDom("file://" + tmp.path() + "/fg.html#zoom=" + id_a + "&search=B", tmp.path());
  ASSERT_FALSE(dom.empty());
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-zoomed"), id_a);
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-search-mode"), "literal");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-samples"), "7");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-value-pct"), "45.0");
  EXPECT_EQ(AttrAfterId(dom, id_a, "rect", "width"), "1200.00");
  EXPECT_EQ(AttrAfterId(dom, FrameId(by, "main"), "rect", "width"), "1200.00");
  EXPECT_EQ(AttrAfterId(dom, FrameId(by, "main;A;B"), "rect", "width"), "480.00");
  EXPECT_NE(AttrAfterId(dom, FrameId(by, "main;B"), "", "style").find("display: none"),
            std::string::npos);
}

// A profile as a real recording looks: 3,000 records standing for 1-4 samples each, at two
// sampling periods (the rate changed halfway), a junk-cyclic stack 400 frames deep, and names
// full of regular-expression syntax.
std::vector<TestStack> RealisticStacks() {
  const std::vector<std::string> shapes = {
      "main;Worker::Run;Foo::operator();compute",
      "main;Worker::Run;Bar::operator==;compare",
      "main;[unknown];lib.so+0x1a",
      "main;[unknown];lib.so+0x1a;[unknown]",
      "main;Dispatch;a|b;leaf",
      "main;Dispatch;.*;leaf",
      "main;Dispatch;a;b",
      "main;Dispatch;ab",
      CyclicJunk(400),
  };
  std::mt19937 rng(7);
  std::vector<TestStack> out;
  for (int i = 0; i < 3000; ++i) {
    const int64_t samples = 1 + static_cast<int64_t>(rng() % 4);
    const int64_t period_ns = i < 1500 ? 10'101'010 : 20'202'020;
    out.push_back({shapes[rng() % shapes.size()], samples, samples * period_ns});
  }
  return out;
}

// What the test page reports per search term, read from the JSON the injected script leaves in
// <pre id="fs-test-results">.
struct SearchResult {
  std::string mode;
  int64_t samples = -1;
  std::string value_pct;
  std::set<std::string> highlighted;
};

// Drives the page's own search box (input + submit) for each term after load, and records the
// status attributes, the highlighted frames and where the root sits in the 1280x800 window.
constexpr const char* kSearchDriver = R"JS(<script>
(function() {
  var terms = %TERMS%, out = {results: {}};
  var status = document.getElementById('fs-status');
  var form = document.getElementById('fs-search-form');
  for (var i = 0; i < terms.length; i++) {
    document.getElementById('fs-search').value = terms[i];
    form.requestSubmit();
    var lit = [], gs = document.querySelectorAll('g.f');
    for (var j = 0; j < gs.length; j++) {
      if (gs[j].querySelector('rect').getAttribute('fill') === 'rgb(230,0,230)') lit.push(gs[j].id);
    }
    out.results[terms[i]] = {mode: status.getAttribute('data-search-mode'),
                             samples: Number(status.getAttribute('data-matched-samples') || -1),
                             value_pct: status.getAttribute('data-matched-value-pct'),
                             lit: lit};
  }
  var root = document.getElementById('f0').querySelector('rect').getBoundingClientRect();
  out.root_top = root.top; out.root_bottom = root.bottom; out.window_height = window.innerHeight;
  var pre = document.createElement('pre');
  pre.id = 'fs-test-results';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>)JS";

std::string Unescape(std::string s) {
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}}) {
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
      s.replace(pos, from.size(), to);
    }
  }
  return s;
}

// The samples and CPU share of the records with a frame (below the root) that `matches`, counted
// from the records themselves rather than the tree the page draws.
std::pair<int64_t, double> Expected(const std::vector<TestStack>& stacks,
                                    const std::function<bool(const std::string&)>& matches) {
  int64_t samples = 0, cpu = 0, total_cpu = 0;
  for (const TestStack& s : stacks) {
    total_cpu += s.cpu_ns;
    bool hit = false;
    for (size_t b = 0; b <= s.path.size() && !hit;) {
      size_t e = std::min(s.path.find(';', b), s.path.size());
      hit = matches(s.path.substr(b, e - b));
      b = e + 1;
    }
    if (hit) {
      samples += s.samples;
      cpu += s.cpu_ns;
    }
  }
  return {samples, 100.0 * static_cast<double>(cpu) / static_cast<double>(total_cpu)};
}

TEST(FlamegraphBrowserTest, RealisticProfileInHeadlessChromium) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::vector<TestStack> stacks = RealisticStacks();
  Profile p = ProfileFromStacks(stacks);
  int64_t total_samples = 0, total_cpu = 0;
  for (const TestStack& s : stacks) {
    total_samples += s.samples;
    total_cpu += s.cpu_ns;
  }
  ASSERT_GT(total_samples, static_cast<int64_t>(stacks.size()));
  const std::vector<std::string> literal = {"[unknown]", "lib.so+0x1a", "operator()", "a|b", ".*"};
  const std::string regex_term = "/^(a\\|b|\\.\\*)$/";
  std::string terms_json = "[";
  for (const std::string& t : literal) terms_json += Json(t).Dump() + ",";
  terms_json += Json(regex_term).Dump() + "," + Json("/[/").Dump() + "]";
  std::string driver = kSearchDriver;
  driver.replace(driver.find("%TERMS%"), 7, terms_json);
  std::string html = RenderFlamegraphHtml(p, {});
  html.insert(html.rfind("</body>"), driver);
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/fg.html", html).ok());

  std::string dom = DumpDom("file://" + tmp.path() + "/fg.html", tmp.path());
  ASSERT_FALSE(dom.empty()) << "chromium produced no DOM";
  auto json = Json::Parse(Unescape(OwnText(dom, "fs-test-results")));
  ASSERT_TRUE(json.ok()) << json.status().message();

  // The root says how many samples there are (not how many records), and sits in the window.
  char cpu_seconds[32];
  std::snprintf(cpu_seconds, sizeof(cpu_seconds), "%.2f s", static_cast<double>(total_cpu) / 1e9);
  std::string samples_text = std::to_string(total_samples);
  samples_text.insert(samples_text.size() - 3, ",");
  EXPECT_EQ(TextAfterId(dom, "f0", "text"),
            "all: " + samples_text + " samples, " + cpu_seconds + " CPU time");
  EXPECT_GE(json->Get("root_top").AsDouble(-1), 0);
  EXPECT_LE(json->Get("root_bottom").AsDouble(1e9), json->Get("window_height").AsDouble());
  // The junk is cut at max_depth with one marker, not drawn 400 levels deep.
  EXPECT_NE(dom.find("[301 levels not drawn]"), std::string::npos);

  // Each term highlights exactly the drawn frames whose name contains it (literal) or matches
  // it (regex), and reports the records' samples and CPU share.
  CallTree tree = BuildCallTree(p, 1, FlamegraphOptions{}.min_width_px / 1200);
  std::vector<FlameRect> rects = LayoutFlameGraph(tree, {});
  auto check = [&](const std::string& term, const std::string& mode,
                   const std::function<bool(const std::string&)>& matches) {
    SCOPED_TRACE(term);
    const Json& r = json->Get("results").Get(term);
    EXPECT_EQ(r.Get("mode").AsString(), mode);
    std::set<std::string> want, got;
    for (const FlameRect& rect : rects) {
      if (rect.node > 0 && matches(tree.NameOf(rect.node))) {
        want.insert("f" + std::to_string(rect.node));
      }
    }
    for (const Json& id : r.Get("lit").AsArray()) got.insert(id.AsString());
    EXPECT_EQ(got, want);
    auto [samples, pct] = Expected(stacks, matches);
    EXPECT_EQ(r.Get("samples").AsInt(), samples);
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%.1f", pct);
    EXPECT_EQ(r.Get("value_pct").AsString(), buf);
    return samples;
  };
  for (const std::string& t : literal) {
    int64_t n = check(t, "literal",
                      [&](const std::string& name) { return name.find(t) != std::string::npos; });
    EXPECT_GT(n, 0);
    EXPECT_LT(n, total_samples / 2);  // as a regex, "[unknown]" or ".*" would match nearly all
  }
  std::regex re("^(a\\|b|\\.\\*)$");
  check(regex_term, "regex", [&](const std::string& name) { return std::regex_search(name, re); });
  // A bad expression says so and highlights nothing.
  const Json& bad = json->Get("results").Get("/[/");
  EXPECT_EQ(bad.Get("mode").AsString(), "invalid");
  EXPECT_EQ(bad.Get("lit").size(), 0u);
}

// ---- Differential flame graph. ----

// main → A (a) and main → B (b), plus main → Only (only) when only > 0; cpu values, `scale` ×.
Profile TwoFunctionProfile(int64_t a, int64_t b, int64_t only = 0, int64_t scale = 1,
                           const std::string& b_name = "B") {
  std::vector<TestStack> stacks;
  if (a > 0) stacks.push_back({"main;A", 1, a * scale});
  if (b > 0) stacks.push_back({"main;" + b_name, 1, b * scale});
  if (only > 0) stacks.push_back({"main;Only", 1, only * scale});
  return ProfileFromStacks(stacks);
}

// "rgb(r,g,b)" → {r, g, b}.
std::vector<int> Rgb(const std::string& fill) {
  int r = -1, g = -1, b = -1;
  EXPECT_EQ(std::sscanf(fill.c_str(), "rgb(%d,%d,%d)", &r, &g, &b), 3) << fill;
  return {r, g, b};
}

TEST(DiffFlamegraphTest, FramesColouredByChange) {
  Profile base = TwoFunctionProfile(75, 25), now = TwoFunctionProfile(25, 75);
  auto html = RenderDiffFlamegraphHtml(base, now, {});
  ASSERT_TRUE(html.ok()) << html.status().message();
  CallTree tree = BuildCallTree(now, 1);
  auto by = RectsByPath(tree, LayoutFlameGraph(tree, {}));
  std::string id_a = FrameId(by, "main;A"), id_b = FrameId(by, "main;B");
  std::string id_main = FrameId(by, "main");
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
  EXPECT_EQ(TextAfterId(*html, id_b, "title"),
            "B\nshare of CPU time: base 25.00%, new 75.00%, delta +50.00 points; 1 sample in new");
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
  auto html = RenderDiffFlamegraphHtml(base, now, {});
  ASSERT_TRUE(html.ok());
  EXPECT_EQ(html->find("<title>Only"), std::string::npos);
  EXPECT_NE(html->find("<td>Only</td><td>20.00</td><td>0.00</td><td>-20.00</td>"),
            std::string::npos);
  // A frame only in NEW counts from 0% in base.
  auto added = RenderDiffFlamegraphHtml(now, base, {});
  ASSERT_TRUE(added.ok());
  EXPECT_NE(added->find("<title>Only\nshare of CPU time: base 0.00%, new 20.00%, delta +20.00"),
            std::string::npos);
}

TEST(DiffFlamegraphTest, NormalisesEachProfileToItsTotal) {
  auto html =
      RenderDiffFlamegraphHtml(TwoFunctionProfile(75, 25), TwoFunctionProfile(75, 25, 0, 10), {});
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
  int rc = RunFramescope("diff " + dir + "/a.prof " + dir + "/b.prof -o " + dir +
                         "/d.html --max-depth 7");
  ASSERT_NE(rc, -1) << "framescope binary not built beside the test (a build dependency)";
  EXPECT_EQ(rc, 0);
  auto html = ReadFile(dir + "/d.html");
  ASSERT_TRUE(html.ok());
  FlamegraphOptions o;
  o.title = "Diff: " + dir + "/a.prof -> " + dir + "/b.prof";
  o.max_depth = 7;
  EXPECT_EQ(*html,
            *RenderDiffFlamegraphHtml(TwoFunctionProfile(75, 25), TwoFunctionProfile(25, 75), o));
  // A missing input is bad usage (2); a corrupt one is a failure (1).
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof " + dir + "/missing.prof -o " + dir + "/x.html"),
            2);
  EXPECT_EQ(RunFramescope("diff " + dir + "/corrupt.prof " + dir + "/b.prof -o " + dir + "/x.html"),
            1);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.html"));
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof"), 2);
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof " + dir + "/b.prof " + dir + "/c.prof"), 2);
  EXPECT_EQ(RunFramescope("diff " + dir + "/a.prof " + dir + "/b.prof --max-depth 0"), 2);
  // The flame graph command passes its options through the same way.
  ASSERT_EQ(RunFramescope("flamegraph " + dir + "/a.prof -o " + dir + "/f.html --max-depth 1"), 0);
  FlamegraphOptions f;
  f.title = "Flame Graph: " + dir + "/a.prof";
  f.max_depth = 1;
  EXPECT_EQ(*ReadFile(dir + "/f.html"), RenderFlamegraphHtml(TwoFunctionProfile(75, 25), f));
  EXPECT_EQ(RunFramescope("flamegraph " + dir + "/a.prof --max-depth 0"), 2);
  std::filesystem::remove_all(dir);
}

TEST(FlamegraphBrowserTest, DiffPageScriptRunsInHeadlessChromium) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  Profile now = TwoFunctionProfile(25, 75);
  ASSERT_TRUE(
      WriteDiffFlamegraphFile(tmp.path() + "/d.html", TwoFunctionProfile(75, 25), now, {}).ok());
  CallTree tree = BuildCallTree(now, 1);
  std::string id_b = FrameId(RectsByPath(tree, LayoutFlameGraph(tree, {})), "main;B");
  // Zoomed on main;B (75%): it spans the full width; search "B" matches 75%.
  std::string dom =
      DumpDom("file://" + tmp.path() + "/d.html#zoom=" + id_b + "&search=B", tmp.path());
  ASSERT_FALSE(dom.empty()) << "chromium produced no DOM";
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-ready"), "1");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-zoomed"), id_b);
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-value-pct"), "75.0");
  EXPECT_EQ(AttrAfterId(dom, "fs-status", "", "data-matched-samples"), "1");
  EXPECT_EQ(AttrAfterId(dom, id_b, "rect", "width"), "1200.00");
  EXPECT_NE(dom.find("fs-diff-table"), std::string::npos);
}

}  // namespace
}  // namespace fs::profile
