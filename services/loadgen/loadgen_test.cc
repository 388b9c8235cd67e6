// Unit tests for the loadgen's parts (scene, encoder, rate window) and an end-to-end run of
// the built framescope-loadgen binary against a real libavformat RTSP client.
// Hermetic: RTSP and metrics on port 0, port file and log in a fresh temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <opencv2/core.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
}

#include "services/loadgen/encoder.h"
#include "services/loadgen/loadgen.h"
#include "services/loadgen/scene.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/net.h"

extern char** environ;

namespace fs::loadgen {
namespace {

bool HaveDarknetImages() { return LoadImageLibrary(kDefaultImagesDir).ok(); }

double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b) {
  return cv::norm(a, b, cv::NORM_L1) / static_cast<double>(a.total() * a.channels());
}

std::string MakeTempDir() {
  std::string templ = ::testing::TempDir() + "loadgen_test.XXXXXX";
  char* dir = mkdtemp(templ.data());
  EXPECT_NE(dir, nullptr);
  return dir ? std::string(dir) : std::string();
}

// ---------------------------------------------------------------------------------------------
// Formatting and the report window

TEST(LoadgenFormatTest, CameraNamesAndFpsLine) {
  EXPECT_EQ(CameraName(0), "cam00");
  EXPECT_EQ(CameraName(3), "cam03");
  EXPECT_EQ(CameraName(123), "cam123");
  EXPECT_EQ(FpsLine("cam03", 30.0), "camera=cam03 FPS: 30.0");
  EXPECT_EQ(FpsLine("cam00", 29.96), "camera=cam00 FPS: 30.0");
  EXPECT_EQ(FpsLine("cam01", 0), "camera=cam01 FPS: 0.0");
}

TEST(DeliveredRateTest, SteadyStreamReadsExactRateWhateverTheWindowEdges) {
  const int64_t period = 1000000000 / 30;
  DeliveredRate rate(30);
  // Frames at k*period; windows of 1.013 s, so window edges fall between frames.
  uint64_t delivered = 0;
  int64_t last_frame = 0;
  int64_t window_start = 0;
  std::vector<double> readings;
  for (int64_t k = 1; k <= 300; ++k) {
    delivered = static_cast<uint64_t>(k);
    last_frame = k * period;
    const int64_t now = last_frame + period / 2;
    if (now - window_start >= 1013000000) {
      readings.push_back(rate.CloseWindow(delivered, last_frame, window_start, now));
      window_start = now;
    }
  }
  ASSERT_GE(readings.size(), 8u);
  for (size_t i = 1; i < readings.size(); ++i) EXPECT_NEAR(readings[i], 30.0, 0.04) << i;
}

TEST(DeliveredRateTest, NoFramesIsZeroAndPartialWindowUsesWindowLength) {
  DeliveredRate rate(30);
  EXPECT_EQ(rate.CloseWindow(0, 0, 0, 1000000000), 0.0);
  // A client joined half-way: 15 frames in a 1 s window.
  EXPECT_NEAR(rate.CloseWindow(15, 1990000000, 1000000000, 2000000000), 15.0, 1e-9);
  // Then the client left: no new frames.
  EXPECT_NEAR(rate.CloseWindow(15, 1990000000, 2000000000, 3000000000), 0.0, 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Scene

TEST(SceneTest, CamerasDifferAndObjectsMove) {
  ImageLibrary none;
  for (const bool photos : {false, true}) {
    ImageLibrary library;
    if (photos) {
      if (!HaveDarknetImages()) continue;
      library = LoadImageLibrary(kDefaultImagesDir).value();
    }
    const ImageLibrary& lib = photos ? library : none;
    SceneOptions a;
    a.width = 320;
    a.height = 180;
    a.loop_frames = 60;
    SceneOptions b = a;
    b.camera_index = 1;
    b.camera_name = "cam01";
    // Camera 7 reuses photograph 0 (7 photographs) but must still look different.
    SceneOptions c = a;
    c.camera_index = static_cast<int>(photos ? library.images.size() : 7);
    c.camera_name = CameraName(c.camera_index);
    cv::Mat fa, fb, fc, fa2;
    Scene(a, lib).Render(0, &fa);
    Scene(b, lib).Render(0, &fb);
    Scene(c, lib).Render(0, &fc);
    Scene(a, lib).Render(15, &fa2);
    ASSERT_EQ(fa.cols, 320);
    ASSERT_EQ(fa.rows, 180);
    ASSERT_EQ(fa.type(), CV_8UC3);
    EXPECT_GT(MeanAbsDiff(fa, fb), 10.0) << "photos=" << photos;
    EXPECT_GT(MeanAbsDiff(fa, fc), 10.0) << "photos=" << photos;
    EXPECT_GT(MeanAbsDiff(fa, fa2), 0.5) << "nothing moved, photos=" << photos;
    // Deterministic: the same camera renders the same frame twice.
    cv::Mat again;
    Scene(a, lib).Render(0, &again);
    EXPECT_EQ(MeanAbsDiff(fa, again), 0.0);
  }
}

TEST(SceneTest, ImageLibraryErrorsNameTheDirectory) {
  auto missing = LoadImageLibrary("/nonexistent/framescope-images");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/framescope-images"), std::string::npos);
  const std::string empty = MakeTempDir();
  auto none = LoadImageLibrary(empty);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no readable"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Encoder

// NAL unit types present in an Annex-B access unit.
std::vector<int> NalTypes(const std::vector<uint8_t>& au) {
  std::vector<int> types;
  for (size_t i = 0; i + 3 < au.size(); ++i) {
    if (au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1) {
      types.push_back(au[i + 3] & 0x1f);
      i += 2;
    }
  }
  return types;
}

TEST(EncoderTest, LoopStartsWithIdrEveryFpsFramesWithInBandHeadersAndDecodes) {
  SceneOptions so;
  so.width = 160;
  so.height = 96;
  so.fps = 15;
  so.loop_frames = 45;
  const Scene scene(so, ImageLibrary{});
  EncoderOptions eo;
  eo.width = so.width;
  eo.height = so.height;
  eo.fps = so.fps;
  auto loop = EncodeLoop(eo, so.loop_frames, [&](int f, cv::Mat* bgr) { scene.Render(f, bgr); });
  ASSERT_TRUE(loop.ok()) << loop.status().message();
  ASSERT_EQ(loop->units.size(), 45u);
  for (size_t i = 0; i < loop->units.size(); ++i) {
    const bool expect_idr = i % 15 == 0;
    EXPECT_EQ(loop->units[i].keyframe, expect_idr) << "frame " << i;
    const std::vector<int> nals = NalTypes(loop->units[i].data);
    ASSERT_FALSE(nals.empty()) << "frame " << i << " is not Annex-B";
    const bool has_sps = std::find(nals.begin(), nals.end(), 7) != nals.end();
    const bool has_pps = std::find(nals.begin(), nals.end(), 8) != nals.end();
    const bool has_idr = std::find(nals.begin(), nals.end(), 5) != nals.end();
    EXPECT_EQ(has_idr, expect_idr) << "frame " << i;
    if (expect_idr) {
      EXPECT_TRUE(has_sps && has_pps) << "frame " << i << ": no in-band SPS/PPS";
    }
  }

  // Decode the loop twice in a row, as a client sees it across the wrap.
  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  ASSERT_NE(codec, nullptr);
  AVCodecContext* ctx = avcodec_alloc_context3(codec);
  ASSERT_EQ(avcodec_open2(ctx, codec, nullptr), 0);
  AVPacket* pkt = av_packet_alloc();
  AVFrame* frame = av_frame_alloc();
  int decoded = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (const AccessUnit& au : loop->units) {
      ASSERT_EQ(av_new_packet(pkt, static_cast<int>(au.data.size())), 0);
      std::copy(au.data.begin(), au.data.end(), pkt->data);
      ASSERT_EQ(avcodec_send_packet(ctx, pkt), 0);
      av_packet_unref(pkt);
      while (avcodec_receive_frame(ctx, frame) == 0) {
        EXPECT_EQ(frame->width, 160);
        EXPECT_EQ(frame->height, 96);
        EXPECT_FALSE(frame->decode_error_flags);
        ++decoded;
      }
    }
  }
  avcodec_send_packet(ctx, nullptr);
  while (avcodec_receive_frame(ctx, frame) == 0) ++decoded;
  EXPECT_EQ(decoded, 90);
  av_frame_free(&frame);
  av_packet_free(&pkt);
  avcodec_free_context(&ctx);
}

// ---------------------------------------------------------------------------------------------
// End to end: the built binary

class LoadgenProcess {
 public:
  // Starts framescope-loadgen (next to this test binary) with `args`; stdout and stderr go
  // to `log_path`.
  LoadgenProcess(const std::vector<std::string>& args, const std::string& log_path) {
    const std::string binary = SelfExeDir() + "/framescope-loadgen";
    std::vector<std::string> argv_storage = {binary};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(argv_storage.size() + 1);
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
  }
  ~LoadgenProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Exit status, or -1 if still running after `timeout_ms`, or 128+signal.
  int Wait(int timeout_ms) {
    const int64_t deadline = MonotonicNs() + int64_t{timeout_ms} * 1000000;
    while (!exited_) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (MonotonicNs() > deadline) return -1;
      usleep(20000);
    }
    return code_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

std::string ReadLog(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : std::string();
}

// What one RTSP client saw.
struct ClientResult {
  std::string error;
  int frames_in_window = 0;  // distinct-PTS packets arriving in the measurement window
  double window_s = 0;
  int width = 0;
  int height = 0;
  int decoded = 0;
  cv::Mat sample;  // Y plane of a frame decoded ~1 s in
};

// Receives `url` over RTSP/TCP for `seconds`, decoding every frame. The rate is measured on
// arrival (wall clock) from 0.5 s after the first packet, skipping the start-up burst.
ClientResult ReceiveRtsp(const std::string& url, double seconds) {
  ClientResult result;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "rtsp_transport", "tcp", 0);
  av_dict_set(&opts, "timeout", "5000000", 0);  // socket I/O timeout, microseconds
  AVFormatContext* fmt = nullptr;
  int rc = avformat_open_input(&fmt, url.c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (rc < 0) {
    result.error = "avformat_open_input(" + url + ") failed: " + std::to_string(rc);
    return result;
  }
  int video = -1;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (fmt->streams[i]->codecpar->codec_id == AV_CODEC_ID_H264) video = static_cast<int>(i);
  }
  if (video < 0) {
    result.error = url + ": no H.264 stream in the SDP";
    avformat_close_input(&fmt);
    return result;
  }
  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  AVCodecContext* dec = avcodec_alloc_context3(codec);
  avcodec_parameters_to_context(dec, fmt->streams[video]->codecpar);
  avcodec_open2(dec, codec, nullptr);
  AVPacket* pkt = av_packet_alloc();
  AVFrame* frame = av_frame_alloc();
  int64_t first_ns = 0;
  int64_t last_pts = AV_NOPTS_VALUE;
  const int64_t window_from = 500000000;
  const int64_t window_to = window_from + static_cast<int64_t>((seconds - 0.5) * 1e9);
  for (;;) {
    rc = av_read_frame(fmt, pkt);
    if (rc < 0) {
      result.error = url + ": av_read_frame failed: " + std::to_string(rc);
      break;
    }
    const int64_t now = MonotonicNs();
    if (first_ns == 0) first_ns = now;
    const int64_t t = now - first_ns;
    if (t > window_to) {
      av_packet_unref(pkt);
      break;
    }
    if (pkt->stream_index == video) {
      if (t >= window_from && pkt->pts != last_pts) ++result.frames_in_window;
      last_pts = pkt->pts;
      if (avcodec_send_packet(dec, pkt) == 0) {
        while (avcodec_receive_frame(dec, frame) == 0) {
          ++result.decoded;
          result.width = frame->width;
          result.height = frame->height;
          if (result.sample.empty() && t >= 1000000000) {
            cv::Mat y(frame->height, frame->width, CV_8UC1, frame->data[0],
                      static_cast<size_t>(frame->linesize[0]));
            result.sample = y.clone();
          }
        }
      }
    }
    av_packet_unref(pkt);
  }
  result.window_s = static_cast<double>(window_to - window_from) / 1e9;
  av_frame_free(&frame);
  av_packet_free(&pkt);
  avcodec_free_context(&dec);
  avformat_close_input(&fmt);
  return result;
}

// Values of "camera=<camera> FPS: X" lines; also checks every report line's exact format.
std::vector<double> FpsValues(const std::string& log, const std::string& camera) {
  static const std::regex line_re(R"(^\S+Z I loadgen: camera=(cam\d+) FPS: (\d+\.\d)$)");
  std::vector<double> values;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("camera=") == std::string::npos || line.find(" FPS: ") == std::string::npos) {
      continue;
    }
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, line_re)) << "malformed report line: " << line;
    if (m.size() == 3 && m[1] == camera) values.push_back(std::stod(m[2]));
  }
  return values;
}

std::vector<std::string> ImagesArgs() {
  if (HaveDarknetImages()) return {"--images-dir", kDefaultImagesDir};
  return {};
}

TEST(LoadgenE2ETest, ServesTwoDistinctCamerasAtThirtyFps) {
  const std::string dir = MakeTempDir();
  const std::string port_file = dir + "/loadgen.json";
  const std::string log_path = dir + "/loadgen.log";
  std::vector<std::string> args = {"--cameras",
                                   "2",
                                   "--fps",
                                   "30",
                                   "--resolution",
                                   "320x180",
                                   "--loop-seconds",
                                   "2",
                                   "--port",
                                   "0",
                                   "--metrics-port",
                                   "0",
                                   "--port-file",
                                   port_file,
                                   "--report-interval",
                                   "1"};
  for (const std::string& a : ImagesArgs()) args.push_back(a);
  LoadgenProcess proc(args, log_path);
  ASSERT_TRUE(proc.started());

  // The RTSP endpoint appears in the port file once the loops are encoded and it listens.
  int rtsp_port = 0;
  int metrics_port = 0;
  const int64_t deadline = MonotonicNs() + 20 * 1000000000LL;
  while (rtsp_port == 0 && MonotonicNs() < deadline) {
    ASSERT_EQ(proc.Wait(0), -1) << "loadgen exited early:\n" << ReadLog(log_path);
    if (auto text = ReadFile(port_file); text.ok()) {
      if (auto json = Json::Parse(*text); json.ok()) {
        rtsp_port = std::atoi(json->Get("endpoints").Get("rtsp_port").AsString().c_str());
        metrics_port = static_cast<int>(json->Get("metrics_port").AsInt());
        if (rtsp_port != 0) {
          EXPECT_EQ(json->Get("endpoints").Get("rtsp").AsString(),
                    "rtsp://127.0.0.1:" + std::to_string(rtsp_port));
        }
      }
    }
    usleep(50000);
  }
  ASSERT_GT(rtsp_port, 0) << "no rtsp_port in " << port_file << "\n" << ReadLog(log_path);
  auto health = HttpGet("127.0.0.1", metrics_port, "/health");
  ASSERT_TRUE(health.ok()) << health.status().message();
  EXPECT_EQ(health->status, 200) << health->body;

  const std::string base = "rtsp://127.0.0.1:" + std::to_string(rtsp_port) + "/";
  ClientResult cam0, cam1;
  std::thread t0([&] { cam0 = ReceiveRtsp(base + "cam00", 3.5); });
  std::thread t1([&] { cam1 = ReceiveRtsp(base + "cam01", 3.5); });
  t0.join();
  t1.join();
  const std::string log_during = ReadLog(log_path);
  for (const ClientResult* r : {&cam0, &cam1}) {
    ASSERT_TRUE(r->error.empty()) << r->error << "\n" << log_during;
    const double fps = r->frames_in_window / r->window_s;
    EXPECT_GE(fps, 27.0) << log_during;
    EXPECT_LE(fps, 33.0) << log_during;
    EXPECT_EQ(r->width, 320);
    EXPECT_EQ(r->height, 180);
    EXPECT_GE(r->decoded, 90);
    ASSERT_FALSE(r->sample.empty());
  }
  EXPECT_GT(MeanAbsDiff(cam0.sample, cam1.sample), 5.0) << "cam00 and cam01 look the same";

  // Clients were attached ~4 s with 1 s report windows: full windows must read ~30.
  for (const std::string camera : {"cam00", "cam01"}) {
    const std::vector<double> values = FpsValues(log_during, camera);
    ASSERT_FALSE(values.empty()) << "no report line for " << camera << "\n" << log_during;
    const bool any_full =
        std::any_of(values.begin(), values.end(), [](double v) { return v >= 27.0 && v <= 33.0; });
    EXPECT_TRUE(any_full) << camera << " never reported 27..33 FPS\n" << log_during;
  }
  auto metrics = HttpGet("127.0.0.1", metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("framescope_frames_out_total{camera=\"cam00\",service=\"loadgen\"}"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("framescope_loadgen_encode_seconds"), std::string::npos);

  // With the clients gone the rate drops to 0.0 within two windows.
  usleep(2600000);
  const std::vector<double> after = FpsValues(ReadLog(log_path), "cam00");
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.back(), 0.0) << ReadLog(log_path);

  const int64_t stop_start = MonotonicNs();
  kill(proc.pid(), SIGTERM);
  EXPECT_EQ(proc.Wait(5000), 0) << ReadLog(log_path);
  EXPECT_LT(MonotonicNs() - stop_start, 2000000000LL) << "shutdown took too long";
}

TEST(LoadgenE2ETest, TakenRtspPortExitsOneNamingThePort) {
  auto holder = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(holder.ok());
  const int port = BoundPort(holder->get());
  const std::string dir = MakeTempDir();
  const std::string log_path = dir + "/loadgen.log";
  LoadgenProcess proc(
      {"--cameras", "1", "--loop-seconds", "0.5", "--resolution", "160x96", "--port",
       std::to_string(port), "--metrics-port", "0", "--port-file", dir + "/loadgen.json"},
      log_path);
  ASSERT_TRUE(proc.started());
  EXPECT_EQ(proc.Wait(15000), 1);
  const std::string log = ReadLog(log_path);
  EXPECT_NE(log.find("port " + std::to_string(port)), std::string::npos) << log;
  EXPECT_NE(log.find("already in use"), std::string::npos) << log;
}

TEST(LoadgenE2ETest, UsageErrorsExitTwoAndBadImagesDirExitsOne) {
  const std::string dir = MakeTempDir();
  {
    LoadgenProcess proc({"--cameras", "0"}, dir + "/a.log");
    EXPECT_EQ(proc.Wait(5000), 2) << ReadLog(dir + "/a.log");
  }
  {
    LoadgenProcess proc({"--no-such-flag"}, dir + "/b.log");
    EXPECT_EQ(proc.Wait(5000), 2) << ReadLog(dir + "/b.log");
  }
  {
    LoadgenProcess proc({"--resolution", "640by360"}, dir + "/c.log");
    EXPECT_EQ(proc.Wait(5000), 2) << ReadLog(dir + "/c.log");
  }
  {
    LoadgenProcess proc({"--help"}, dir + "/d.log");
    EXPECT_EQ(proc.Wait(5000), 0);
    const std::string help = ReadLog(dir + "/d.log");
    for (const char* flag :
         {"--cameras", "--fps", "--resolution", "--host", "--port", "--loop-seconds",
          "--images-dir", "--report-interval", "--port-file", "--metrics-port"}) {
      EXPECT_NE(help.find(flag), std::string::npos) << flag << " missing from --help:\n" << help;
    }
  }
  {
    LoadgenProcess proc({"--images-dir", dir + "/missing", "--port", "0", "--metrics-port", "0"},
                        dir + "/e.log");
    EXPECT_EQ(proc.Wait(5000), 1);
    EXPECT_NE(ReadLog(dir + "/e.log").find(dir + "/missing"), std::string::npos);
  }
}

}  // namespace
}  // namespace fs::loadgen
