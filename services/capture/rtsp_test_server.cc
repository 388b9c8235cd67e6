// A real RTSP camera for capture's tests and measurements, built only from Debian packages
// (gst-rtsp-server + videotestsrc + openh264enc): H.264 over RTP, served to any number of
// clients, each getting its own live pipeline.
//
// Why not `ffmpeg -f rtsp -rtsp_flags listen`: in FFmpeg 5.1 `listen` is a flag of the RTSP
// *demuxer* (ffmpeg as a server that receives ANNOUNCE/RECORD from a publisher). The RTSP
// *muxer* is always a publishing client that connects out, so it cannot serve a DESCRIBE/PLAY
// client such as capture ("Connection refused" against an empty port).
//
//   capture_rtsp_test_server --port 0 --ready-file /tmp/x.port --size 320x240 --fps 30
// serves rtsp://127.0.0.1:<port>/cam and writes <port> to --ready-file once it listens.
// SIGTERM/SIGINT stop it cleanly; tests SIGKILL it to simulate a camera dying.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <cstdio>
#include <string>

#include "src/base/file_util.h"
#include "src/base/flags.h"

namespace {

gboolean OnSignal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_REMOVE;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/cam";
  std::string size = "320x240";
  int fps = 30;
  int gop = 0;
  int bitrate_kbps = 1000;
  std::string ready_file;
  fs::FlagSet flags("capture_rtsp_test_server", "Serves a synthetic H.264 RTSP camera.");
  flags.String("host", &host, "address to listen on");
  flags.Int("port", &port, "RTSP port (0 = any free port; see --ready-file)");
  flags.String("path", &path, "mount path of the stream");
  flags.String("size", &size, "frame size WxH");
  flags.Int("fps", &fps, "frames per second");
  flags.Int("gop", &gop, "frames between key frames (0 = one per second)");
  flags.Int("bitrate-kbps", &bitrate_kbps, "encoder bitrate");
  flags.String("ready-file", &ready_file, "write the bound port here once listening");
  int exit_code = 0;
  if (!flags.ParseOrExit(argc, argv, &exit_code)) return exit_code;
  int width = 0, height = 0;
  if (auto st = fs::ParseResolution(size, &width, &height); !st.ok() || fps <= 0) {
    fprintf(stderr, "capture_rtsp_test_server: bad --size or --fps\n");
    return 2;
  }
  if (gop <= 0) gop = fps;

  gst_init(&argc, &argv);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  GstRTSPServer* server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, host.c_str());
  gst_rtsp_server_set_service(server, std::to_string(port).c_str());

  // Each client gets its own pipeline (the factory is not shared), so a reconnecting client
  // starts at a key frame with fresh SPS/PPS.
  std::string launch = "( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=" +
                       std::to_string(width) + ",height=" + std::to_string(height) +
                       ",framerate=" + std::to_string(fps) +
                       "/1 ! openh264enc complexity=low gop-size=" + std::to_string(gop) +
                       " rate-control=bitrate bitrate=" + std::to_string(bitrate_kbps * 1000) +
                       " ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  gst_rtsp_mount_points_add_factory(mounts, path.c_str(), factory);
  g_object_unref(mounts);

  if (gst_rtsp_server_attach(server, nullptr) == 0) {
    fprintf(stderr, "capture_rtsp_test_server: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  int bound = gst_rtsp_server_get_bound_port(server);
  fprintf(stderr, "capture_rtsp_test_server: serving rtsp://%s:%d%s (%dx%d@%d)\n", host.c_str(),
          bound, path.c_str(), width, height, fps);
  if (!ready_file.empty()) {
    if (auto st = fs::WriteFileAtomic(ready_file, std::to_string(bound) + "\n"); !st.ok()) {
      fprintf(stderr, "capture_rtsp_test_server: %s\n", st.message().c_str());
      return 1;
    }
  }
  g_unix_signal_add(SIGTERM, OnSignal, loop);
  g_unix_signal_add(SIGINT, OnSignal, loop);
  g_main_loop_run(loop);
  g_object_unref(server);
  g_main_loop_unref(loop);
  return 0;
}
