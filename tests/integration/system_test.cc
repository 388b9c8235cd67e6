// End-to-end: `framescope up` with real RTSP cameras (loadgen), capture, detection and
// redis-server, then status, /metrics, the Redis stream and `down`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <regex>

#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/net.h"
#include "src/clients/prom_text.h"
#include "src/clients/redis_client.h"
#include "src/memory/heap/heap_counters.h"
#include "src/system/process.h"
#include "tests/integration/test_util.h"

namespace fs {
namespace {

using testing::RunShell;
using testing::TempDir;

std::string Fs() { return testing::BinDir() + "/framescope"; }

Json StatusJson(const std::string& state_dir, int* exit_code = nullptr) {
  auto r = RunShell(Fs() + " status --json --state-dir " + state_dir);
  if (exit_code) *exit_code = r.exit_code;
  auto j = Json::Parse(r.output);
  return j.ok() ? *j : Json();
}

// Reads `fd` until its text contains `want` ("" = until EOF) or `timeout_s` passes.
std::string ReadUntil(int fd, const std::string& want, int timeout_s) {
  std::string out;
  for (int waited_ms = 0; waited_ms < timeout_s * 1000; waited_ms += 200) {
    if (!want.empty() && out.find(want) != std::string::npos) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::vector<PromSample> Scrape(int port) {
  auto r = HttpGet("127.0.0.1", port, "/metrics", 2000);
  if (!r.ok()) return {};
  auto s = ParsePromText(r->body);
  EXPECT_TRUE(s.ok()) << "port " << port << ": " << s.status().message();
  return s.ok() ? *s : std::vector<PromSample>{};
}

std::map<std::string, int> MetricsPorts(const Json& status) {
  std::map<std::string, int> ports;
  for (const auto& s : status.Get("services").AsArray()) {
    std::string m = s.Get("metrics").AsString();
    if (auto c = m.rfind(':'); c != std::string::npos)
      ports[s.Get("name").AsString()] = atoi(m.c_str() + c + 1);
  }
  return ports;
}

// Processes of this system: everything whose command line names the state dir, plus the
// pids state.json recorded (redis-server's command line does not name the state dir's root
// in a way we can rely on, so it is checked by pid).
std::vector<int> OurPids(const std::string& state_dir, const Json& last_status) {
  auto pids = testing::PidsMatching(state_dir);
  for (const auto& s : last_status.Get("services").AsArray()) {
    int pid = static_cast<int>(s.Get("pid").AsInt(-1));
    if (pid > 0 && ProcessAlive(pid)) pids.push_back(pid);
  }
  return pids;
}

std::map<std::string, int> ServicePids(const Json& status) {
  std::map<std::string, int> pids;
  for (const auto& s : status.Get("services").AsArray()) {
    pids[s.Get("name").AsString()] = static_cast<int>(s.Get("pid").AsInt(-1));
  }
  return pids;
}

// The services `up --heap-profile` names run with the heap counters library: mapped into the
// process, counting into <state-dir>/heap/<service>/heap-<pid>.counters; the others without it.
void ExpectHeapProfiled(const std::string& sd, const Json& status) {
  std::map<std::string, int> pids = ServicePids(status);
  std::map<std::string, std::string> heap_dirs;  // what `status` says is counted, and where
  for (const auto& s : status.Get("services").AsArray()) {
    heap_dirs[s.Get("name").AsString()] = s.Get("heap_dir").AsString();
  }
  for (const char* svc : {"aggregation", "api", "capture"}) {
    ASSERT_GT(pids[svc], 0) << svc << " in " << status.Dump(2);
    auto maps = ReadFile("/proc/" + std::to_string(pids[svc]) + "/maps");
    ASSERT_TRUE(maps.ok()) << svc;
    bool want = std::string(svc) != "capture";
    EXPECT_EQ(maps->find("libframescope_heap.so") != std::string::npos, want) << svc;
    EXPECT_EQ(heap_dirs[svc], want ? sd + "/heap/" + svc : "") << svc;
    if (!want) continue;
    auto c = memory::ReadHeapCounters(memory::HeapCountersPath(sd + "/heap/" + svc, pids[svc]));
    ASSERT_TRUE(c.ok()) << svc << ": " << c.status().message();
    EXPECT_EQ(c->pid, pids[svc]);
    EXPECT_GT(c->allocated_calls, 0u) << svc;
  }
}

// What a process was started with for the heap library: "maps" if it is mapped, "env" if its
// environment names it or FRAMESCOPE_HEAP_DIR; "" for neither.
std::string HeapHooks(int pid) {
  std::string found;
  auto maps = ReadFile("/proc/" + std::to_string(pid) + "/maps");
  if (!maps.ok()) return "unreadable maps";
  if (maps->find(memory::kHeapLibrary) != std::string::npos) found += "maps ";
  auto env = ReadFile("/proc/" + std::to_string(pid) + "/environ");
  if (!env.ok()) return "unreadable environ";
  for (size_t start = 0; start < env->size();) {
    size_t end = env->find('\0', start);
    if (end == std::string::npos) end = env->size();
    std::string var = env->substr(start, end - start);
    if ((var.rfind("LD_PRELOAD=", 0) == 0 && var.find(memory::kHeapLibrary) != std::string::npos) ||
        var.rfind(std::string(memory::kHeapDirEnv) + "=", 0) == 0) {
      found += "env ";
    }
    start = end + 1;
  }
  return found;
}

// The rollback (`heap-off`): each service that had the heap library runs a fresh process without
// it, one restarted at a time, the rest untouched; the system is still up with frames flowing;
// the recorded settings say heap_profile = [] (so `up` without --heap-profile is accepted and a
// crashed service comes back without the library); the report has each restart's time, the
// total and the FPS before, during and after.
void ExpectHeapOffRollsBack(const std::string& sd, const std::string& up_args) {
  const std::map<std::string, int> before = ServicePids(StatusJson(sd));
  const std::string err = sd + "/heap-off.err";
  // Progress (stderr) apart from the report (stdout); RunShell merges what is left of stderr.
  auto off =
      RunShell("{ " + Fs() + " heap-off --window 2 --json --state-dir " + sd + " 2>" + err + "; }");
  std::string progress = ReadFile(err).ok() ? *ReadFile(err) : "";
  ASSERT_EQ(off.exit_code, 0) << off.output << progress;
  auto report = Json::Parse(off.output);
  ASSERT_TRUE(report.ok()) << off.output;
  EXPECT_TRUE(report->Get("ok").AsBool()) << off.output;
  const auto& restarted = report->Get("services").AsArray();
  ASSERT_EQ(restarted.size(), 2u) << off.output;
  double restarts_s = 0;
  for (size_t i = 0; i < restarted.size(); ++i) {
    const std::string name = restarted[i].Get("name").AsString();
    EXPECT_EQ(name, i == 0 ? "aggregation" : "api");  // start order, one at a time
    EXPECT_EQ(restarted[i].Get("old_pid").AsInt(), before.at(name)) << name;
    EXPECT_GT(restarted[i].Get("restart_s").AsDouble(), 0) << name;
    EXPECT_LT(restarted[i].Get("restart_s").AsDouble(), 30) << name;
    restarts_s += restarted[i].Get("restart_s").AsDouble();
    EXPECT_NE(progress.find("[" + std::to_string(i + 1) + "/2] " + name + " restarted"),
              std::string::npos)
        << progress;
  }
  // The command's total spans both restarts, which the supervisor timed.
  EXPECT_GE(report->Get("total_s").AsDouble(), restarts_s) << off.output;
  const Json& fps = report->Get("fps");
  // Frames flow before and after; the lowest 1 s window during may be 0 on a loaded machine
  // (detection completes batches in bursts), but it is measured.
  EXPECT_GT(fps.Get("before").AsDouble(), 0) << off.output;
  EXPECT_GT(fps.Get("after").AsDouble(), 0) << off.output;
  EXPECT_TRUE(fps.Get("min_during").is_number()) << off.output;

  int code = -1;
  Json status = StatusJson(sd, &code);
  EXPECT_EQ(code, 0) << status.Dump(2);  // every service healthy
  const std::map<std::string, int> after = ServicePids(status);
  for (const auto& [name, pid] : after) {
    bool was_profiled = name == "aggregation" || name == "api";
    EXPECT_EQ(pid != before.at(name), was_profiled) << name << " pid " << pid;
    EXPECT_EQ(HeapHooks(pid), "") << name << " pid " << pid;
  }
  for (const auto& s : status.Get("services").AsArray()) {
    EXPECT_FALSE(s.Has("heap_dir")) << s.Dump();
    if (s.Get("name").AsString() == "detection") {
      EXPECT_GT(s.Get("fps").AsDouble(), 0) << "frames flow on";
    }
  }
  auto state = ReadFile(sd + "/state.json"), resolved = ReadFile(sd + "/config.resolved.json");
  ASSERT_TRUE(state.ok() && resolved.ok());
  EXPECT_TRUE(Json::Parse(*state)->Get("config").Get("heap_profile").AsArray().empty());
  EXPECT_TRUE(Json::Parse(*resolved)->Get("heap_profile").AsArray().empty());
  auto same = RunShell(Fs() + " up" + up_args + " --state-dir " + sd);
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("already up"), std::string::npos) << same.output;
  auto again = RunShell(Fs() + " heap-off --state-dir " + sd);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("nothing to roll back: no service runs with libframescope_heap.so"),
            std::string::npos)
      << again.output;

  // A crash after the rollback: the supervisor brings api back without the library.
  ASSERT_GT(after.at("api"), 0);  // never kill(-1)
  kill(after.at("api"), SIGKILL);
  // The supervisor's own view: it marks a service running once its health check passed.
  int back = -1;
  std::string seen;
  for (int i = 0; i < 100 && back <= 0; ++i) {
    usleep(200000);
    auto text = ReadFile(sd + "/state.json");
    auto state = Json::Parse(text.ok() ? *text : "");
    if (!state.ok()) continue;
    for (const auto& s : state->Get("services").AsArray()) {
      if (s.Get("name").AsString() != "api") continue;
      seen = s.Dump();
      if (s.Get("state").AsString() == "running" && s.Get("pid").AsInt() != after.at("api")) {
        back = static_cast<int>(s.Get("pid").AsInt());
      }
    }
  }
  ASSERT_GT(back, 0) << "api not restarted after a crash; last seen " << seen << "\n"
                     << RunShell("tail -n 30 " + sd + "/logs/supervisor.log").output;
  EXPECT_EQ(HeapHooks(back), "") << "api pid " << back;
}

TEST(SystemTest, UpRunsTwoCamerasEndToEndAndDownLeavesNothing) {
  // Two of our services counted by the heap library: the system must still run as it does.
  const std::string kHeap = " --heap-profile aggregation,api --state-dir ";
  TempDir tmp;
  std::string sd = tmp.path() + "/state";
  testing::SystemGuard guard(sd);
  auto up = RunShell(Fs() + " up --cameras 2 --fps 30 --api-rate 0 --no-prometheus" + kHeap + sd);
  ASSERT_EQ(up.exit_code, 0) << up.output
                             << RunShell(Fs() + " logs --lines 30 --state-dir " + sd).output;
  EXPECT_NE(up.output.find("framescope is up"), std::string::npos) << up.output;
  for (const char* svc : {"redis", "loadgen", "capture", "detection"}) {
    EXPECT_NE(up.output.find(svc), std::string::npos) << up.output;
  }
  // A second `up` with the same settings is a no-op; with others it names each that differs
  // and refuses (exit 2) instead of silently keeping the running ones.
  auto again =
      RunShell(Fs() + " up --cameras 2 --fps 30 --api-rate 0 --no-prometheus" + kHeap + sd);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("already up"), std::string::npos) << again.output;
  auto other = RunShell(Fs() + " up --cameras 2 --fps 15 --api-rate 0 --state-dir " + sd);
  EXPECT_EQ(other.exit_code, 2) << other.output;
  for (const char* want : {"fps (--fps): running 30, requested 15",
                           "prometheus.enabled (--no-prometheus): running false, requested true",
                           "heap_profile (--heap-profile): running aggregation,api, requested \"\"",
                           "framescope down --state-dir"}) {
    EXPECT_NE(other.output.find(want), std::string::npos) << want << " in:\n" << other.output;
  }
  EXPECT_EQ(other.output.find("cameras"), std::string::npos) << "unchanged setting named";

  Json status = StatusJson(sd);
  auto ports = MetricsPorts(status);
  ASSERT_TRUE(ports.count("loadgen") && ports.count("capture") && ports.count("detection"))
      << status.Dump(2);
  ExpectHeapProfiled(sd, status);

  // Let it run ~15 s, then compare what loadgen sent with what capture decoded.
  sleep(15);
  // Scrape downstream first: everything capture has decoded was sent before loadgen's scrape.
  auto cap = Scrape(ports["capture"]);
  auto lg = Scrape(ports["loadgen"]);
  auto det = Scrape(ports["detection"]);
  for (const char* cam : {"cam00", "cam01"}) {
    double sent = SumSamples(lg, "framescope_frames_out_total", {{"camera", cam}});
    double decoded = SumSamples(cap, "framescope_frames_in_total", {{"camera", cam}});
    // ~15 s at 30 FPS plus start-up: well over 300 frames each.
    EXPECT_GT(sent, 300) << cam;
    // Tolerance, lower side: capture may trail loadgen by frames in flight plus frames sent
    // before its decoder had the first IDR (at most ~1.5 s at 30 FPS), and 2% for loss.
    // Upper side: capture cannot decode more than was sent, but loadgen folds payloaded frames
    // into its delivered counter on a 250 ms client poll, so its counter trails by up to
    // 0.25 s x 30 FPS = 8 frames.
    EXPECT_GE(decoded, sent * 0.98 - 45) << cam << " sent " << sent << " decoded " << decoded;
    EXPECT_LE(decoded, sent + 10) << cam << " sent " << sent << " decoded " << decoded;
  }
  // Every service's /metrics parsed (Scrape asserts), and the required families exist.
  EXPECT_GT(SumSamples(cap, "framescope_stage_latency_seconds_count", {{"stage", "decode"}}), 0);
  EXPECT_GT(SumSamples(det, "framescope_stage_latency_seconds_count", {{"stage", "inference"}}), 0);
  EXPECT_GT(SumSamples(det, "framescope_batch_size_count"), 0);
  EXPECT_GT(SumSamples(det, "framescope_end_to_end_latency_seconds_count"), 0);
  EXPECT_GT(SumSamples(det, "framescope_redis_commands_total"), 0);
  EXPECT_GT(SumSamples(det, "framescope_redis_pipelined_commands_total"), 0);
  // framescope redis on the running system: detection's XADDs per op, the server's
  // commands per read beside them, a verdict (not "not measurable": detection has counters).
  auto redis_run = RunShell("{ " + Fs() + " redis --duration 2 --json --out " + tmp.path() +
                            "/p --state-dir " + sd + " 2>/dev/null; }");
  EXPECT_TRUE(redis_run.exit_code == 0 || redis_run.exit_code == 3) << redis_run.output;
  auto redis_json = Json::Parse(redis_run.output);
  ASSERT_TRUE(redis_json.ok()) << redis_run.output;
  EXPECT_NE(redis_json->Get("checklist").Get("verdict").AsString(), "not measurable");
  EXPECT_TRUE(redis_json->Get("server").Get("commands_per_read").is_number());
  bool xadd = false;
  for (const Json& op : redis_json->Get("client_pipelining").Get("per_op").AsArray()) {
    xadd |= op.Get("source").AsString() == "detection" && op.Get("op").AsString() == "XADD" &&
            op.Get("commands").AsDouble() > 0;
  }
  EXPECT_TRUE(xadd) << redis_json->Get("client_pipelining").Dump(2);

  // Detections are in the Redis stream with every field.
  auto redis = RedisClient::Connect(status.Get("redis_url").AsString(), "test");
  ASSERT_TRUE(redis.ok()) << redis.status().message();
  auto len = redis->Command({"XLEN", "detections"});
  ASSERT_TRUE(len.ok());
  EXPECT_GT(len->integer, 0) << "no detections published";
  auto range = redis->Command({"XRANGE", "detections", "-", "+", "COUNT", "1"});
  ASSERT_TRUE(range.ok());
  ASSERT_FALSE(range->elements.empty());
  std::map<std::string, std::string> fields;
  const auto& kv = range->elements[0].elements[1].elements;
  for (size_t i = 0; i + 1 < kv.size(); i += 2) fields[kv[i].str] = kv[i + 1].str;
  for (const char* f :
       {"camera", "seq", "capture_ts_ns", "idx", "class", "score", "x", "y", "w", "h"}) {
    EXPECT_TRUE(fields.count(f)) << "missing field " << f;
  }

  // status: healthy, with frames and FPS.
  int code = -1;
  status = StatusJson(sd, &code);
  EXPECT_EQ(code, 0) << status.Dump(2);
  for (const auto& s : status.Get("services").AsArray()) {
    EXPECT_TRUE(s.Get("healthy").AsBool()) << s.Dump();
    if (s.Get("name").AsString() == "capture") {
      EXPECT_GT(s.Get("fps").AsDouble(), 50) << s.Dump();
    }
  }

  // The loadgen log carries `camera=camNN FPS: 30.0`-style lines for both cameras.
  auto log = ReadFile(sd + "/logs/loadgen.log");
  ASSERT_TRUE(log.ok());
  for (const char* cam : {"cam00", "cam01"}) {
    std::regex re(std::string("camera=") + cam + " FPS: (2[89]|3[01])\\.[0-9]");
    EXPECT_TRUE(std::regex_search(*log, re)) << "no ~30 FPS line for " << cam;
  }

  // A crashed service is restarted and counted.
  pid_t capture_pid = 0;
  for (const auto& s : status.Get("services").AsArray()) {
    if (s.Get("name").AsString() == "capture")
      capture_pid = static_cast<pid_t>(s.Get("pid").AsInt());
  }
  ASSERT_GT(capture_pid, 0);
  kill(capture_pid, SIGKILL);
  bool restarted = false;
  for (int i = 0; i < 100 && !restarted; ++i) {
    usleep(200000);
    Json st = StatusJson(sd);
    for (const auto& s : st.Get("services").AsArray()) {
      if (s.Get("name").AsString() == "capture" && s.Get("restarts").AsInt() == 1 &&
          s.Get("healthy").AsBool()) {
        restarted = true;
      }
    }
  }
  EXPECT_TRUE(restarted) << StatusJson(sd).Dump(2);

  ExpectHeapOffRollsBack(sd, " --cameras 2 --fps 30 --api-rate 0 --no-prometheus");

  Json last = StatusJson(sd);
  auto down = RunShell(Fs() + " down --state-dir " + sd);
  EXPECT_EQ(down.exit_code, 0) << down.output;
  usleep(200000);
  EXPECT_TRUE(OurPids(sd, last).empty()) << "left running after down";
  EXPECT_EQ(StatusJson(sd, &code).Get("phase").AsString(), "stopped");
  EXPECT_EQ(code, 3);
}

// Bad input: a clear error, a non-zero exit, and nothing left running. A failure found
// before anything starts (every case but one that fails in a service) leaves no state dir.
class BadInputTest : public ::testing::Test {
 protected:
  enum Fails { kBeforeStarting, kAfterStarting };
  void ExpectFailsCleanly(const std::string& args, int want_code, const std::string& want_text,
                          Fails when = kBeforeStarting) {
    std::string sd = tmp_.path() + "/state";
    auto r = RunShell(Fs() + " up --state-dir " + sd + " " + args);
    EXPECT_EQ(r.exit_code, want_code) << args << ": " << r.output;
    EXPECT_NE(r.output.find(want_text), std::string::npos) << "want \"" << want_text << "\" in:\n"
                                                           << r.output;
    if (when == kBeforeStarting) {
      EXPECT_FALSE(PathExists(sd)) << args << " left a state-dir skeleton";
    } else {
      usleep(300000);  // a service the supervisor stopped may take a moment to vanish
    }
    EXPECT_TRUE(testing::PidsMatching(sd).empty()) << "left running: " << args;
    RunShell(Fs() + " down --purge --state-dir " + sd + "; rm -rf " + sd);
  }
  TempDir tmp_;
};

TEST_F(BadInputTest, MalformedConfig) {
  std::string cfg = tmp_.path() + "/bad.toml";
  ASSERT_TRUE(WriteFileAtomic(cfg, "cameras = 2\nfsp = 30\n").ok());
  ExpectFailsCleanly("--config " + cfg, 2, "bad.toml:2: unknown key \"fsp\"");
}

TEST_F(BadInputTest, MissingConfigFile) {
  ExpectFailsCleanly("--config " + tmp_.path() + "/nope.toml", 2, "nope.toml");
}

// --heap-profile without the preload library built beside framescope: 1 before anything starts
// (a copy of framescope in a folder with the services but not the library).
TEST_F(BadInputTest, HeapProfileWithoutTheLibraryFailsBeforeStarting) {
  const std::string bin = tmp_.path() + "/bin", sd = tmp_.path() + "/state";
  testing::SystemGuard guard(sd);  // should the check be missed, the system it starts is stopped
  std::string links;
  for (const char* b : {"loadgen", "capture", "detection", "aggregation", "api", "apiclient"}) {
    links += "ln -s " + testing::BinDir() + "/framescope-" + b + " " + bin + "/; ";
  }
  auto r = RunShell("mkdir " + bin + " && cp " + Fs() + " " + bin + "/ && " + links + bin +
                    "/framescope up --heap-profile api --state-dir " + sd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("libframescope_heap.so not found in " + bin), std::string::npos)
      << r.output;
  EXPECT_FALSE(PathExists(sd));
}

// A file the user named that is missing is bad usage (2), unlike a missing package (1).
TEST_F(BadInputTest, MissingNamedFiles) {
  ExpectFailsCleanly("--cameras 1 --model " + tmp_.path() + "/missing.cfg", 2,
                     "--model: model file " + tmp_.path() + "/missing.cfg not found");
  ExpectFailsCleanly("--cameras 1 --weights " + tmp_.path() + "/missing.weights", 2,
                     "--weights: weights file " + tmp_.path() + "/missing.weights not found");
}

TEST_F(BadInputTest, RtspPortAlreadyTaken) {
  auto held = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(held.ok());
  int port = BoundPort(held->get());
  ExpectFailsCleanly("--cameras 1 --rtsp-port " + std::to_string(port), 1,
                     "port " + std::to_string(port) + " on 127.0.0.1 is already in use");
}

TEST_F(BadInputTest, UnreachableCamera) {
  auto free_port = PickFreePort();
  ASSERT_TRUE(free_port.ok());
  std::string url = "rtsp://127.0.0.1:" + std::to_string(*free_port) + "/nothing";
  std::string cfg = tmp_.path() + "/cams.toml";
  ASSERT_TRUE(WriteFileAtomic(cfg, "[[camera]]\nname = \"door\"\nurl = \"" + url + "\"\n").ok());
  ExpectFailsCleanly("--config " + cfg, 1, "capture failed to start", kAfterStarting);
}

// Every bad value is bad usage (2) and the message names the flag, or the config key.
TEST_F(BadInputTest, BadValuesExit2NamingTheFlag) {
  ExpectFailsCleanly("--cameras lots", 2, "expected an integer");
  ExpectFailsCleanly("--resolution 640", 2, "--resolution \"640\"");
  ExpectFailsCleanly("--cameras 0", 2, "--cameras must be between 1 and 64 (got 0)");
  ExpectFailsCleanly("--fps 0", 2, "--fps must be between 1 and 120 (got 0)");
  ExpectFailsCleanly("--fps 12.5", 2, "--fps must be a whole number");
  ExpectFailsCleanly("--api-port 70000", 2, "--api-port must be between 0 and 65535");
  ExpectFailsCleanly("--input-size 100", 2, "--input-size must be a multiple of 32");
  ExpectFailsCleanly("--redis-url nowhere", 2, "--redis-url \"nowhere\"");
  ExpectFailsCleanly("--heap-profile api,redis", 2, "--heap-profile: unknown service \"redis\"");
  std::string cfg = tmp_.path() + "/values.toml";
  ASSERT_TRUE(WriteFileAtomic(cfg, "[aggregation]\nprocesses = 0\n").ok());
  ExpectFailsCleanly("--config " + cfg, 2, "aggregation.processes (in " + cfg + ") must be");
  ASSERT_TRUE(WriteFileAtomic(cfg, "heap_profile = [\"postgres\"]\n").ok());
  ExpectFailsCleanly("--config " + cfg, 2, "values.toml:1: heap_profile: unknown service");
  ASSERT_TRUE(WriteFileAtomic(cfg,
                              "[[camera]]\nname = \"door\"\nurl = \"rtsp://a/1\"\n"
                              "[[camera]]\nname = \"door\"\nurl = \"rtsp://a/2\"\n")
                  .ok());
  ExpectFailsCleanly("--config " + cfg, 2,
                     "values.toml:4: camera.name \"door\" is already used by the camera at line 1");
}

// Commands that only look at a state dir create nothing there: not the dir itself, nor an
// empty logs/, run/, data/, cache/ tree inside an existing one.
TEST(LifecycleTest, LookingAtAStateDirCreatesNothing) {
  TempDir tmp;
  std::string fresh = tmp.path() + "/fresh", empty = tmp.path() + "/empty";
  ASSERT_EQ(RunShell("mkdir " + empty).exit_code, 0);
  for (const std::string& sd : {fresh, empty}) {
    auto status = RunShell(Fs() + " status --state-dir " + sd);
    EXPECT_EQ(status.exit_code, 3) << status.output;
    EXPECT_NE(status.output.find("not running"), std::string::npos) << status.output;
    EXPECT_NE(RunShell(Fs() + " logs --state-dir " + sd).exit_code, 0);
    EXPECT_NE(RunShell(Fs() + " record --service capture --duration 1 -o " + tmp.path() +
                       "/x.prof --state-dir " + sd)
                  .exit_code,
              0);
    EXPECT_EQ(RunShell(Fs() + " down --purge --state-dir " + sd).exit_code, 0);
  }
  EXPECT_FALSE(PathExists(fresh));
  EXPECT_EQ(RunShell("ls -A " + empty).output, "") << "created inside an existing state dir";
}

// Ctrl-C while `up` starts the system: `up` stops what the supervisor (in its own session,
// out of the terminal's reach) started so far, says so, and exits 130 with nothing left.
TEST(LifecycleTest, CtrlCDuringUpStopsWhatItStarted) {
  TempDir tmp;
  std::string sd = tmp.path() + "/state";
  testing::SystemGuard guard(sd);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::string fs = Fs();
  pid_t up = fork();
  if (up == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execl(fs.c_str(), fs.c_str(), "up", "--cameras", "1", "--fps", "10", "--api-rate", "0",
          "--no-prometheus", "--state-dir", sd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  // Redis is up and PostgreSQL starting once this line shows.
  std::string out = ReadUntil(fds[0], "] starting postgres", 120);
  ASSERT_NE(out.find("] starting postgres"), std::string::npos) << out;
  kill(up, SIGINT);
  out += ReadUntil(fds[0], "", 120);  // to EOF: `up` has exited
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(up, &wstatus, 0), up);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 130)
      << "wait status " << wstatus << " (want exit 130):\n"
      << out;
  EXPECT_NE(out.find("interrupted: stopping the 2 service(s) started so far (redis, postgres)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("nothing left running"), std::string::npos) << out;
  EXPECT_TRUE(testing::PidsMatching(sd).empty()) << "left running after Ctrl-C:\n" << out;
  // Stopped on request, not a failed start.
  auto text = ReadFile(sd + "/state.json");
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto state = Json::Parse(*text);
  ASSERT_TRUE(state.ok()) << *text;
  EXPECT_EQ(state->Get("phase").AsString(), "stopped") << *text;
  auto status = RunShell(Fs() + " status --state-dir " + sd);
  EXPECT_EQ(status.exit_code, 3) << status.output;
  EXPECT_NE(status.output.find("not running"), std::string::npos) << status.output;
}

// A stale state.json whose supervisor pid now belongs to an unrelated process group leader:
// `down` must not signal it, and `status` must call the system not running.
TEST(LifecycleTest, StaleStateKillsNothingElse) {
  TempDir tmp;
  std::string sd = tmp.path() + "/state";
  ASSERT_EQ(RunShell("mkdir -p " + sd).exit_code, 0);
  pid_t other = fork();
  if (other == 0) {
    setsid();
    execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  usleep(100000);
  std::string state = "{\"supervisor_pid\": " + std::to_string(other) +
                      ", \"phase\": \"running\", \"services\": [{\"name\": \"capture\", \"pid\": " +
                      std::to_string(other) + "}]}";
  ASSERT_TRUE(WriteFileAtomic(sd + "/state.json", state).ok());
  int code = -1;
  StatusJson(sd, &code);
  EXPECT_EQ(code, 3);
  auto down = RunShell(Fs() + " down --state-dir " + sd);
  EXPECT_EQ(down.exit_code, 0) << down.output;
  EXPECT_TRUE(ProcessAlive(other)) << "down killed an unrelated process: " << down.output;
  kill(other, SIGKILL);
  waitpid(other, nullptr, 0);
}

TEST(LifecycleTest, CorruptStateIsReported) {
  TempDir tmp;
  std::string sd = tmp.path() + "/state";
  ASSERT_EQ(RunShell("mkdir -p " + sd).exit_code, 0);
  ASSERT_TRUE(WriteFileAtomic(sd + "/state.json", "{\"supervisor_pid\": 12").ok());
  auto r = RunShell(Fs() + " status --state-dir " + sd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("corrupt"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fs
