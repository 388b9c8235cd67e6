// BuildProfile on synthetic samples (no kernel, no symbolizer): merging, labels, periods and the
// cut at implausible return addresses.
#include "src/record/recorder.h"

#include <gtest/gtest.h>

namespace fs::profile {
namespace {

RawSample Sample(uint32_t tid, std::vector<uint64_t> user, uint64_t period = 10000000) {
  RawSample s;
  s.pid = 100;
  s.tid = tid;
  s.period = period;
  s.user_ips = std::move(user);
  return s;
}

TEST(BuildProfileTest, MergesIdenticalStacksPerThreadWithLabels) {
  std::vector<RawSample> raw = {Sample(101, {0x401000, 0x402000}),
                                Sample(101, {0x401000, 0x402000}),
                                Sample(102, {0x401000, 0x402000}, 5000000)};
  Profile p = BuildProfile(raw, {}, {{101, "worker"}, {102, "io"}}, {{100, "capture"}}, 99);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].values, (std::vector<int64_t>{2, 20000000}));
  EXPECT_EQ(p.samples[0].labels.at("thread"), "worker");
  EXPECT_EQ(p.samples[0].labels.at("service"), "capture");
  EXPECT_EQ(p.samples[0].num_labels.at("tid"), 101);
  EXPECT_EQ(p.samples[1].values, (std::vector<int64_t>{1, 5000000}));
  EXPECT_EQ(p.period, 1000000000 / 99);
  EXPECT_EQ(p.samples[0].location_ids.size(), 2u);
}

TEST(BuildProfileTest, GarbageReturnAddressesCutTheStackVisibly) {
  // Leaf, one good caller, then junk a frame-pointer walk read from a frameless function.
  std::vector<RawSample> raw = {Sample(101, {0x401000, 0x402000, 0x0, 0x403000}),
                                Sample(101, {0x401000, 0xffffffff82000000ULL, 0x404000}),
                                Sample(101, {0x10, 0x401000})};  // A bad leaf is kept.
  Profile p = BuildProfile(raw, {}, {}, {}, 99);
  ASSERT_EQ(p.samples.size(), 3u);
  auto function_of = [&p](uint64_t location_id) -> std::string {
    const Location* l = p.FindLocation(location_id);
    if (l == nullptr || l->lines.empty()) return "";
    return p.FindFunction(l->lines[0].function_id)->name;
  };
  ASSERT_EQ(p.samples[0].location_ids.size(), 3u);
  EXPECT_EQ(function_of(p.samples[0].location_ids[2]), "[truncated stack]");
  ASSERT_EQ(p.samples[1].location_ids.size(), 2u);
  EXPECT_EQ(function_of(p.samples[1].location_ids[1]), "[truncated stack]");
  EXPECT_EQ(p.samples[1].location_ids[1], p.samples[0].location_ids[2]);  // One location.
  EXPECT_EQ(p.samples[2].location_ids.size(), 2u);
}

}  // namespace
}  // namespace fs::profile
