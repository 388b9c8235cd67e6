#include "src/session/model_source.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs {
namespace {

char State(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string stat = ss.str();
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos ? '?' : stat[paren + 2];
}

TEST(DetectionPauseTest, StopsForItsLifetimeAndResumes) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) pause();
  }
  {
    DetectionPause pause(child);
    EXPECT_TRUE(pause.paused());
    for (int i = 0; i < 100 && State(child) != 'T'; ++i) usleep(10000);
    EXPECT_EQ(State(child), 'T');
  }
  for (int i = 0; i < 100 && State(child) == 'T'; ++i) usleep(10000);
  EXPECT_NE(State(child), 'T') << "not resumed";
  {
    // What a second Ctrl-C does before the process ends (no destructor runs then).
    DetectionPause pause(child);
    for (int i = 0; i < 100 && State(child) != 'T'; ++i) usleep(10000);
    ASSERT_EQ(State(child), 'T');
    ResumePausedDetection();
    for (int i = 0; i < 100 && State(child) == 'T'; ++i) usleep(10000);
    EXPECT_NE(State(child), 'T') << "ResumePausedDetection did not resume it";
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(DetectionPause(0).paused());
}

TEST(ModelSourceTest, FlagsAndTheDefaultModel) {
  char dir[] = "/tmp/fs_model_source_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ModelFlags f;
  f.state_dir = dir;  // no system there: the default model, zero-filled, said so
  auto none = ResolveModelSource(f);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->spec.model_path, "/usr/share/darknet/cfg/yolov3-tiny.cfg");
  EXPECT_NE(none->origin.find("no running system"), std::string::npos);
  EXPECT_EQ(none->detection_pid, 0);
  EXPECT_EQ(none->max_batch, 1);

  f.model = "/m.cfg";
  f.input_size = "320x192";
  auto sized = ResolveModelSource(f);
  ASSERT_TRUE(sized.ok()) << sized.status().message();
  EXPECT_EQ(sized->spec.input_width, 320);
  EXPECT_EQ(sized->spec.input_height, 192);
  f.input_size = "256";
  EXPECT_EQ(ResolveModelSource(f)->spec.input_width, 256);
  for (const char* bad : {"abc", "0", "-3", "12x", "99999"}) {
    f.input_size = bad;
    auto r = ResolveModelSource(f);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--input-size"), std::string::npos) << bad;
  }
  f.input_size.clear();
  f.cfg = "/c.cfg";  // --cfg is --model by its trtexec name; not both
  EXPECT_FALSE(ResolveModelSource(f).ok());
  f.model.clear();
  EXPECT_EQ(ResolveModelSource(f)->spec.model_path, "/c.cfg");
  f.cfg.clear();
  f.weights = "/w.weights";
  auto orphan = ResolveModelSource(f);
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.status().message().find("--weights needs --model"), std::string::npos);
  std::system(("rm -rf " + std::string(dir)).c_str());
}

}  // namespace
}  // namespace fs
