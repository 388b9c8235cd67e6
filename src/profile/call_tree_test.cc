#include "src/profile/call_tree.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "src/profile/test_profiles.h"

namespace fs::profile {
namespace {

// "main;A;B" → node index, for readable expectations.
std::map<std::string, int32_t> NodesByPath(const CallTree& tree) {
  std::map<std::string, int32_t> out;
  std::vector<std::string> path(tree.nodes.size());
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    const std::string& parent = path[static_cast<size_t>(tree.nodes[i].parent)];
    const std::string& name = tree.NameOf(static_cast<int32_t>(i));
    path[i] = parent.empty() ? name : parent + ";" + name;
    out[path[i]] = static_cast<int32_t>(i);
  }
  return out;
}

// Sample records standing for several samples each, at two sampling periods (as after a rate
// change), so the number of records, the number of samples and the CPU time all disagree.
Profile WeightedProfile() {
  return ProfileFromStacks({{"main;A", 3, 30'000'000},
                            {"main;A;B", 5, 25'000'000},
                            {"main;C", 1, 10'000'000},
                            {"main;C", 4, 20'000'000},
                            {"main;A", 7, 0}});  // zero weight: not drawn, not counted
}

TEST(CallTreeTest, CountsSamplesNotRecords) {
  Profile p = WeightedProfile();
  ASSERT_EQ(SamplesValueIndex(p), 0);
  ASSERT_EQ(DisplayValueIndex(p), 1);
  CallTree tree = BuildCallTree(p, DisplayValueIndex(p));
  EXPECT_EQ(tree.total(), 85'000'000);
  EXPECT_EQ(tree.total_samples(), 13);  // 3 + 5 + 1 + 4, not 4 records
  auto by = NodesByPath(tree);
  ASSERT_EQ(by.size(), 4u);
  EXPECT_EQ(tree.nodes[static_cast<size_t>(by["main"])].samples, 13);
  EXPECT_EQ(tree.nodes[static_cast<size_t>(by["main;A"])].samples, 8);
  EXPECT_EQ(tree.nodes[static_cast<size_t>(by["main;A"])].value, 55'000'000);
  EXPECT_EQ(tree.nodes[static_cast<size_t>(by["main;A;B"])].samples, 5);
  EXPECT_EQ(tree.nodes[static_cast<size_t>(by["main;C"])].samples, 5);
  EXPECT_EQ(tree.nodes[static_cast<size_t>(by["main;C"])].value, 30'000'000);
  // Weighted by the samples value itself, the tree's value is the sample count.
  CallTree by_count = BuildCallTree(p, SamplesValueIndex(p));
  EXPECT_EQ(by_count.value_type, "samples");
  EXPECT_EQ(by_count.total(), 20);  // the zero-cpu record weighs 7 here
  EXPECT_EQ(by_count.total_samples(), 20);
}

TEST(CallTreeTest, CountsRecordsWithoutSamplesType) {
  Profile p = WeightedProfile();
  p.sample_types = {{"cpu", "nanoseconds"}};
  for (Sample& s : p.samples) s.values = {s.values[1]};
  EXPECT_EQ(SamplesValueIndex(p), -1);
  CallTree tree = BuildCallTree(p, DisplayValueIndex(p));
  EXPECT_EQ(tree.total(), 85'000'000);
  EXPECT_EQ(tree.total_samples(), 4);  // one per record with a positive value
}

TEST(CallTreeTest, ParentsPrecedeChildrenAndDepthsFollow) {
  CallTree tree = BuildCallTree(WeightedProfile(), 1);
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    const CallNode& n = tree.nodes[i];
    ASSERT_GE(n.parent, 0);
    EXPECT_LT(static_cast<size_t>(n.parent), i);
    EXPECT_EQ(n.depth, tree.nodes[static_cast<size_t>(n.parent)].depth + 1);
  }
  EXPECT_EQ(tree.NameOf(0), "all");
}

TEST(CallTreeTest, PrunedTreeKeepsNarrowNodesUnexpanded) {
  Profile p = ProfileFromStacks(
      {{"main;Wide;Leaf", 1, 90}, {"main;Narrow;Deep;Deeper", 1, 5}, {"main;Narrow", 1, 5}});
  auto full = NodesByPath(BuildCallTree(p, 1));
  EXPECT_EQ(full.size(), 6u);
  // main;Narrow is 10% of the total: below 11% it is kept (its siblings' positions depend on
  // its value) but its callees are not built.
  CallTree pruned = BuildCallTree(p, 1, 0.11);
  auto by = NodesByPath(pruned);
  EXPECT_EQ(by.size(), 4u);
  ASSERT_TRUE(by.count("main;Narrow"));
  EXPECT_EQ(pruned.nodes[static_cast<size_t>(by["main;Narrow"])].value, 10);
  EXPECT_EQ(pruned.nodes[static_cast<size_t>(by["main;Narrow"])].samples, 2);
  EXPECT_TRUE(by.count("main;Wide;Leaf"));
}

TEST(CallTreeTest, SelfValues) {
  CallTree tree = BuildCallTree(WeightedProfile(), 1);
  auto by = NodesByPath(tree);
  std::vector<int64_t> self = SelfValues(tree);
  EXPECT_EQ(self[0], 0);
  EXPECT_EQ(self[static_cast<size_t>(by["main"])], 0);
  EXPECT_EQ(self[static_cast<size_t>(by["main;A"])], 30'000'000);
  EXPECT_EQ(self[static_cast<size_t>(by["main;A;B"])], 25'000'000);
}

// ---- Comparing two profiles. ----

TEST(CallTreeDiffTest, MatchesNodesByCallPath) {
  CallTree base = BuildCallTree(ProfileFromStacks({{"main;A", 1, 75}, {"main;B", 1, 25}}), 1);
  // NEW's A under C is a different call path from BASE's main;A.
  CallTree now = BuildCallTree(
      ProfileFromStacks({{"main;A", 1, 25}, {"main;B", 1, 50}, {"main;C;A", 1, 25}}), 1);
  auto diff = DiffCallTrees(base, now);
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  auto b = NodesByPath(base), n = NodesByPath(now);
  auto at = [&](const char* path) { return static_cast<size_t>(n[path]); };
  EXPECT_EQ(diff->base_node[at("main;A")], b["main;A"]);
  EXPECT_EQ(diff->base_node[at("main;C;A")], -1);
  EXPECT_DOUBLE_EQ(diff->base_pct[at("main;A")], 75);
  EXPECT_DOUBLE_EQ(diff->new_pct[at("main;A")], 25);
  EXPECT_DOUBLE_EQ(diff->delta_points[at("main;A")], -50);
  EXPECT_DOUBLE_EQ(diff->delta_points[at("main;B")], 25);
  EXPECT_DOUBLE_EQ(diff->delta_points[at("main;C;A")], 25);
  EXPECT_DOUBLE_EQ(diff->delta_points[at("main")], 0);
  EXPECT_DOUBLE_EQ(diff->max_abs_delta, 50);
}

TEST(CallTreeDiffTest, EmptyBaseShowsNoChange) {
  CallTree base = BuildCallTree(ProfileFromStacks({}), 1);
  CallTree now = BuildCallTree(ProfileFromStacks({{"main;A", 1, 5}}), 1);
  auto diff = DiffCallTrees(base, now);
  ASSERT_TRUE(diff.ok());
  for (double d : diff->delta_points) EXPECT_EQ(d, 0);
  EXPECT_EQ(diff->max_abs_delta, 0);
}

TEST(CallTreeDiffTest, RejectsDifferentValueTypes) {
  Profile other = ProfileFromStacks({{"main;A", 1, 5}});
  other.sample_types = {{"alloc", "bytes"}, {"x", "y"}};
  auto diff = DiffCallTrees(BuildCallTree(ProfileFromStacks({{"main;A", 1, 5}}), 1),
                            BuildCallTree(other, DisplayValueIndex(other)));
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.status().message().find("different kinds"), std::string::npos);
}

const DiffRow* FindRow(const std::vector<DiffRow>& rows, const std::string& name) {
  for (const DiffRow& r : rows) {
    if (r.function == name) return &r;
  }
  return nullptr;
}

std::vector<DiffRow> SelfShares(const std::vector<TestStack>& base,
                                const std::vector<TestStack>& now, size_t limit = 20) {
  return DiffSelfShares(BuildCallTree(ProfileFromStacks(base), 1),
                        BuildCallTree(ProfileFromStacks(now), 1), limit);
}

TEST(CallTreeDiffTest, SelfSharesByFunction) {
  std::vector<DiffRow> rows =
      SelfShares({{"main;A", 1, 75}, {"main;B", 1, 25}}, {{"main;A", 1, 25}, {"main;B", 1, 75}});
  ASSERT_EQ(rows.size(), 2u);  // main has no self time
  const DiffRow* a = FindRow(rows, "A");
  const DiffRow* b = FindRow(rows, "B");
  ASSERT_TRUE(a && b);
  EXPECT_DOUBLE_EQ(b->base_self_pct, 25);
  EXPECT_DOUBLE_EQ(b->new_self_pct, 75);
  EXPECT_DOUBLE_EQ(b->delta_points, 50);
  EXPECT_DOUBLE_EQ(a->delta_points, -50);
  EXPECT_EQ(rows[0].function, "A");  // ties in |delta| go by name
  EXPECT_EQ(
      SelfShares({{"main;A", 1, 75}, {"main;B", 1, 25}}, {{"main;A", 1, 25}, {"main;B", 1, 75}}, 1)
          .size(),
      1u);
}

TEST(CallTreeDiffTest, SelfSharesListFunctionsOnlyInBase) {
  std::vector<DiffRow> rows =
      SelfShares({{"main;A", 1, 40}, {"main;B", 1, 40}, {"main;Only", 1, 20}},
                 {{"main;A", 1, 50}, {"main;B", 1, 50}});
  const DiffRow* only = FindRow(rows, "Only");
  ASSERT_NE(only, nullptr);
  EXPECT_DOUBLE_EQ(only->base_self_pct, 20);
  EXPECT_DOUBLE_EQ(only->new_self_pct, 0);
  EXPECT_DOUBLE_EQ(only->delta_points, -20);
  // The same function reached by two paths sums its self time.
  rows = SelfShares({{"main;A", 1, 50}, {"main;B;A", 1, 50}}, {{"main;A", 1, 100}});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[0].base_self_pct, 100);
}

TEST(CallTreeDiffTest, NormalisesEachProfileToItsTotal) {
  for (const DiffRow& r : SelfShares({{"main;A", 1, 75}, {"main;B", 1, 25}},
                                     {{"main;A", 10, 750}, {"main;B", 10, 250}})) {
    EXPECT_DOUBLE_EQ(r.delta_points, 0) << r.function;
  }
}

}  // namespace
}  // namespace fs::profile
