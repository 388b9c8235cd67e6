#include "src/session/baseline_doc.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "src/base/file_util.h"

namespace fs::profile {
namespace {

constexpr const char* kFirstBegin = "<!-- framescope:checklist:begin -->";
constexpr const char* kFirstEnd = "<!-- framescope:checklist:end -->";
constexpr const char* kCpuBegin = "<!-- framescope:cpu:begin -->";
constexpr const char* kCpuEnd = "<!-- framescope:cpu:end -->";

std::string Section(const char* begin, const char* end, const std::string& body) {
  return std::string(begin) + "\n" + body + "\n" + end + "\n";
}

class BaselineDocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/baseline_doc_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/baseline.md";
  }
  void TearDown() override { (void)!system(("rm -rf " + dir_).c_str()); }
  std::string Write(const std::vector<BaselineSection>& sections) {
    EXPECT_TRUE(WriteBaseline(path_, sections).ok());
    return *ReadFile(path_);
  }
  std::string dir_, path_;
};

// A section marked first goes before every other framescope section of an existing document,
// after the reader's own text; a second run moves nothing and duplicates nothing.
TEST_F(BaselineDocTest, FirstSectionGoesBeforeTheOthersAndStaysUnique) {
  ASSERT_TRUE(WriteFileAtomic(path_, "# Baseline\n\nMy notes.\n\n" +
                                         Section(kCpuBegin, kCpuEnd, "## CPU old") + "\nTail.\n")
                  .ok());
  const std::vector<BaselineSection> sections = {
      {kFirstBegin, kFirstEnd, Section(kFirstBegin, kFirstEnd, "## Checklist"), true},
      {kCpuBegin, kCpuEnd, Section(kCpuBegin, kCpuEnd, "## CPU new")}};
  for (int run = 0; run < 2; ++run) {
    const std::string doc = Write(sections);
    EXPECT_EQ(doc.rfind("# Baseline\n\nMy notes.\n\n" + std::string(kFirstBegin), 0), 0u) << doc;
    EXPECT_LT(doc.find("## Checklist"), doc.find("## CPU new")) << doc;
    EXPECT_EQ(doc.find("## Checklist"), doc.rfind("## Checklist")) << doc;
    EXPECT_EQ(doc.find("## CPU old"), std::string::npos) << doc;
    EXPECT_NE(doc.find("Tail."), std::string::npos) << doc;
  }
}

// A section written after others in an earlier version of the document is moved to the top.
TEST_F(BaselineDocTest, FirstSectionFoundLaterIsMovedUp) {
  ASSERT_TRUE(WriteFileAtomic(path_, "# Baseline\n\n" + Section(kCpuBegin, kCpuEnd, "## CPU") +
                                         "\n" + Section(kFirstBegin, kFirstEnd, "## Old list"))
                  .ok());
  const std::string doc =
      Write({{kFirstBegin, kFirstEnd, Section(kFirstBegin, kFirstEnd, "## Checklist"), true}});
  EXPECT_LT(doc.find("## Checklist"), doc.find("## CPU")) << doc;
  EXPECT_EQ(doc.find("## Old list"), std::string::npos) << doc;
}

}  // namespace
}  // namespace fs::profile
