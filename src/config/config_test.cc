#include "src/config/config.h"

#include <gtest/gtest.h>

#include <cmath>

namespace fs {
namespace {

StatusOr<SystemConfig> Load(const std::string& text) {
  auto doc = ParseToml(text, "test.toml");
  if (!doc.ok()) return doc.status();
  SystemConfig c;
  RETURN_IF_ERROR(ApplyConfigToml(*doc, "test.toml", &c));
  RETURN_IF_ERROR(ValidateConfig(c));
  return c;
}

TEST(ConfigTest, ParsesFullExample) {
  auto c = Load(R"(# comment
cameras = 4
fps = 15.5
resolution = "1280x720"
[detection]
max_batch = 8   # trailing comment
conf_threshold = 0.4
[[camera]]
name = "lobby"
url = "rtsp://10.0.0.5:554/s1"
[[camera]]
url = 'rtsp://10.0.0.6/s1'
[ports]
rtsp = 8554
[postgres]
url = "postgresql://db.local/fs"
[aggregation]
processes = 3
batch = 250
[api]
port = 8080
client_rate = 12.5
[prometheus]
enabled = false
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->cameras, 4);
  EXPECT_DOUBLE_EQ(c->fps, 15.5);
  EXPECT_EQ(c->width, 1280);
  EXPECT_EQ(c->max_batch, 8);
  EXPECT_DOUBLE_EQ(c->conf_threshold, 0.4);
  ASSERT_EQ(c->real_cameras.size(), 2u);
  EXPECT_EQ(c->real_cameras[0].name, "lobby");
  EXPECT_EQ(c->real_cameras[1].name, "cam01");
  EXPECT_EQ(c->real_cameras[1].url, "rtsp://10.0.0.6/s1");
  EXPECT_EQ(c->rtsp_port, 8554);
  EXPECT_EQ(c->postgres_url, "postgresql://db.local/fs");
  EXPECT_EQ(c->aggregation_processes, 3);
  EXPECT_EQ(c->aggregation_batch, 250);
  EXPECT_EQ(c->api_port, 8080);
  EXPECT_DOUBLE_EQ(c->api_client_rate, 12.5);
  EXPECT_FALSE(c->prometheus);
}

TEST(ConfigTest, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"cameras = 4\nfsp = 30\n", "test.toml:2: unknown key \"fsp\""},
      {"cameras = \"ten\"\n", "test.toml:1: cameras must be an integer"},
      {"[detection]\nmax_batch = \n", "test.toml:2: missing value"},
      {"resolution = \"640\"\n", "test.toml:1: resolution"},
      {"[nope]\n", "unknown table [nope]"},
      {"[[camera]]\nurl = \"http://x\"\n", "needs url = \"rtsp://...\""},
      {"name = unquoted\n", "strings need quotes"},
      {"[detection\n", "unterminated table header"},
      {"cameras = 0\n", "cameras must be between 1 and 64 (got 0)"},
      {"cameras = 4294967297\n", "test.toml:1: cameras is out of range"},
      {"cameras = 99999999999999999999\n", "test.toml:1: integer out of range"},
      {"[detection]\ninput_size = 100\n",
       "detection.input_size must be a multiple of 32 between 32 and 1600 (got 100)"},
      {"fps = 12.5\n", "fps must be a whole number for the simulated cameras (got 12.5)"},
      {"fps = 0\n", "fps must be between 1 and 120 (got 0)"},
      {"[prometheus]\nenabled = 1\n", "test.toml:2: prometheus.enabled must be true or false"},
      {"[aggregation]\nprocesses = 0\n", "aggregation.processes must be between 1 and 16"},
      {"[api]\nclient_rate = -1\n", "api.client_rate must be between 0 and 10000"},
      {"[api]\nport = 70000\n", "api.port must be between 0 and 65535 (got 70000)"},
      {"[postgres]\nurl = 5\n", "test.toml:2: postgres.url must be a string"},
      {"[[camera]]\nname=\"a\"\nurl=\"rtsp://x\"\n[[camera]]\nname=\"a\"\nurl=\"rtsp://y\"\n",
       "test.toml:4: camera.name \"a\" is already used by the camera at line 1"},
      // A default name (cam01 for the second camera) counts as used too.
      {"[[camera]]\nname=\"cam01\"\nurl=\"rtsp://x\"\n[[camera]]\nurl=\"rtsp://y\"\n",
       "test.toml:4: camera.name \"cam01\" is already used"},
  };
  for (const auto& c : cases) {
    auto r = Load(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << "got: " << r.status().message() << "\nwant: " << c.expect;
  }
}

// `up` names the flag when a bad value came from the command line.
TEST(ConfigTest, ErrorsNameTheSettingThroughTheNamer) {
  SystemConfig c;
  c.max_batch = 0;
  auto as_flag = [](const std::string& key) {
    return key == "detection.max_batch" ? std::string("--max-batch") : key;
  };
  Status st = ValidateConfig(c, as_flag);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "--max-batch must be between 1 and 64 (got 0)");
  c.max_batch = 4;
  c.fps = std::nan("");
  st = ValidateConfig(c, as_flag);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "fps must be between 1 and 120 (got nan)");
}

TEST(ConfigTest, CompareConfigsNamesEachChangedSettingWithoutPasswords) {
  SystemConfig running, requested;
  EXPECT_TRUE(CompareConfigs(running, requested).empty());
  requested.fps = 15;
  requested.prometheus = false;
  running.real_cameras = {{"lobby", "rtsp://u:old@10.0.0.5/s"}};
  requested.real_cameras = {{"lobby", "rtsp://u:new@10.0.0.5/s"}};
  auto changes = CompareConfigs(running, requested);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].key, "fps");
  EXPECT_EQ(changes[0].from, "30");
  EXPECT_EQ(changes[0].to, "15");
  EXPECT_EQ(changes[1].key, "camera");
  EXPECT_EQ(changes[1].from, "lobby=rtsp://u:***@10.0.0.5/s");
  EXPECT_EQ(changes[1].to, "lobby=rtsp://u:***@10.0.0.5/s (a different password)");
  EXPECT_EQ(changes[2].key, "prometheus.enabled");
  EXPECT_EQ(changes[2].to, "false");
}

TEST(ConfigTest, HeapProfileKeyParsedSortedAndAllExpanded) {
  auto c = Load("heap_profile = [\"api\", \"detection\", \"api\"]\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->heap_profile, (std::vector<std::string>{"api", "detection"}));
  EXPECT_TRUE(HeapProfiled(*c, "api"));
  EXPECT_FALSE(HeapProfiled(*c, "capture"));
  c = Load("heap_profile = [\"all\"]\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->heap_profile.size(), std::size(kHeapProfileServices));
  EXPECT_TRUE(HeapProfiled(*c, "aggregation-2"));  // a scale-out process of aggregation
  EXPECT_TRUE(Load("")->heap_profile.empty());
}

TEST(ConfigTest, HeapProfileRejectsOtherServicesNamingTheKey) {
  for (const char* bad : {"redis", "postgres", "prometheus", "detecton"}) {
    auto c = Load(std::string("heap_profile = [\"api\", \"") + bad + "\"]\n");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("test.toml:1: heap_profile: unknown service \"" +
                                        std::string(bad) + "\""),
              std::string::npos)
        << c.status().message();
  }
  auto c = Load("heap_profile = \"api\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("heap_profile must be an array of strings"),
            std::string::npos)
      << c.status().message();
  // The same check behind ValidateConfig (a resolved config read back), through the namer.
  SystemConfig v;
  v.heap_profile = {"redis"};
  Status st = ValidateConfig(v, [](const std::string& key) { return "--" + key; });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--heap_profile: unknown service \"redis\""), std::string::npos);
}

TEST(ConfigTest, CompareConfigsSeesAHeapProfileChange) {
  SystemConfig running, requested;
  requested.heap_profile = {"aggregation", "api"};
  auto changes = CompareConfigs(running, requested);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].key, "heap_profile");
  EXPECT_EQ(changes[0].from, "\"\"");
  EXPECT_EQ(changes[0].to, "aggregation,api");
}

TEST(ConfigTest, MissingFile) {
  SystemConfig c;
  Status st = LoadConfigFile("/nonexistent/framescope.toml", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/framescope.toml"), std::string::npos);
}

}  // namespace
}  // namespace fs

namespace fs {
namespace {

TEST(RedactUrlTest, HidesEveryPasswordForm) {
  EXPECT_EQ(RedactUrl("postgresql://u:pw@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(RedactUrl("postgresql://u@h/db?password=pw&sslmode=off"),
            "postgresql://u@h/db?password=***&sslmode=off");
  EXPECT_EQ(RedactUrl("host=h password=pw user=u"), "host=h password=*** user=u");
  EXPECT_EQ(RedactUrl("password='p w\\'x' host=h"), "password=*** host=h");
  EXPECT_EQ(RedactUrl("host=h user=u"), "host=h user=u");
  EXPECT_EQ(RedactUrl("host=h mypassword=x"), "host=h mypassword=x");  // not the keyword
}

}  // namespace
}  // namespace fs
