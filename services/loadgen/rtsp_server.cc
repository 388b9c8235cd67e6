#include "services/loadgen/rtsp_server.h"

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "src/base/clock.h"
#include "src/base/logging.h"
#include "src/base/net.h"

namespace fs::loadgen {
namespace {

// h264parse turns our byte-stream access units into what rtph264pay wants and gives it the
// SPS/PPS for the SDP; config-interval=1 re-sends SPS/PPS at least every second (we also
// have them in-band before each IDR) so a client that joins a running stream can decode.
constexpr char kLaunch[] =
    "( appsrc name=src is-live=true format=time do-timestamp=false "
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )";

// Keep at most this much queued in an appsrc whose pipeline is not flowing (e.g. between a
// client's DESCRIBE and PLAY); older buffers are dropped first.
constexpr GstClockTime kMaxQueuedTime = 2 * GST_SECOND;

void InitGstreamerOnce() {
  static std::once_flag once;
  std::call_once(once, [] { gst_init(nullptr, nullptr); });
}

}  // namespace

struct RtspServer::Impl {
  // Frame count and the time of the latest frame, read together (a mutex, not two atomics,
  // so a reader never pairs a count with another frame's time). ~30 updates/s per camera.
  struct FrameCounter {
    std::mutex mu;
    uint64_t frames = 0;
    int64_t last_ns = 0;
  };
  struct Camera {
    Impl* owner = nullptr;
    std::string name;
    std::vector<GstMemory*> units;  // one ref each, released in ~Impl
    std::vector<bool> keyframe;
    // Frames out of pay0, over all medias of this camera. Shared with the pad probes so a
    // pipeline that outlives Stop() never counts into freed memory.
    std::shared_ptr<FrameCounter> payloaded = std::make_shared<FrameCounter>();

    std::mutex mu;                  // guards the three fields below
    GstRTSPMedia* media = nullptr;  // current shared media (ref) or null when no client
    GstElement* appsrc = nullptr;   // its appsrc (ref)
    uint64_t pushed = 0;            // access units pushed into this appsrc: PTS index

    // Poll() state, touched only by the polling thread.
    uint64_t last_payloaded = 0;
    uint64_t delivered = 0;
    int64_t last_delivered_ns = 0;
    int last_clients = 0;
  };

  RtspServerOptions options;
  std::vector<std::unique_ptr<Camera>> cameras;
  GMainContext* context = nullptr;
  GMainLoop* loop = nullptr;
  GstRTSPServer* server = nullptr;
  guint source_id = 0;
  int port = 0;
  std::thread loop_thread;
  std::thread pusher_thread;
  std::atomic<bool> stop{false};
  bool stopped = false;

  ~Impl();
  void ReleaseMedia(Camera* cam, GstRTSPMedia* only_if = nullptr);
  void PushNext(Camera* cam);
  void PusherLoop();
  void Stop();

  static void OnMediaConfigure(GstRTSPMediaFactory* factory, GstRTSPMedia* media, gpointer data);
  static void OnMediaUnprepared(GstRTSPMedia* media, gpointer data);
  static GstPadProbeReturn CountFrames(GstPad* pad, GstPadProbeInfo* info, gpointer data);
};

Status CheckRtspPortFree(const std::string& host, int port) {
  if (port == 0) return Status::Ok();
  auto probe = ListenTcp(host, port);
  if (!probe.ok()) {
    return Err("cannot serve RTSP: " + probe.status().message() + "; --port 0 picks any free port");
  }
  return Status::Ok();
}

// Runs on a gst-rtsp-server thread when a camera's (shared) media is first built for a client.
void RtspServer::Impl::OnMediaConfigure(GstRTSPMediaFactory*, GstRTSPMedia* media, gpointer data) {
  Camera* cam = static_cast<Camera*>(data);
  const RtspServerOptions& opt = cam->owner->options;
  GstElement* bin = gst_rtsp_media_get_element(media);
  GstElement* src = gst_bin_get_by_name_recurse_up(GST_BIN(bin), "src");
  GstElement* pay = gst_bin_get_by_name_recurse_up(GST_BIN(bin), "pay0");
  gst_object_unref(bin);
  if (src == nullptr || pay == nullptr) {
    LOG(ERROR) << cam->name << ": media pipeline lacks appsrc or pay0";
    if (src) gst_object_unref(src);
    if (pay) gst_object_unref(pay);
    return;
  }
  GstCaps* caps = gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING, "byte-stream",
                                      "alignment", G_TYPE_STRING, "au", "width", G_TYPE_INT,
                                      opt.width, "height", G_TYPE_INT, opt.height, "framerate",
                                      GST_TYPE_FRACTION, opt.fps, 1, nullptr);
  gst_app_src_set_caps(GST_APP_SRC(src), caps);
  gst_caps_unref(caps);
  gst_app_src_set_max_time(GST_APP_SRC(src), kMaxQueuedTime);
  gst_app_src_set_max_bytes(GST_APP_SRC(src), 0);
  gst_app_src_set_leaky_type(GST_APP_SRC(src), GST_APP_LEAKY_TYPE_DOWNSTREAM);

  GstPad* pad = gst_element_get_static_pad(pay, "src");
  gst_pad_add_probe(
      pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      &Impl::CountFrames, new std::shared_ptr<FrameCounter>(cam->payloaded),
      [](gpointer p) { delete static_cast<std::shared_ptr<FrameCounter>*>(p); });
  gst_object_unref(pad);
  gst_object_unref(pay);
  g_signal_connect(media, "unprepared", G_CALLBACK(&Impl::OnMediaUnprepared), cam);

  GstElement* old_appsrc = nullptr;
  GstRTSPMedia* old_media = nullptr;
  {
    std::lock_guard<std::mutex> lock(cam->mu);
    old_appsrc = cam->appsrc;
    old_media = cam->media;
    cam->media = GST_RTSP_MEDIA(g_object_ref(media));
    cam->appsrc = src;  // keeps the ref from gst_bin_get_by_name
    // A new media has no viewer yet: start it at the loop's first IDR so the first client
    // decodes from its first frame, with PTS from 0.
    cam->pushed = 0;
  }
  if (old_appsrc) gst_object_unref(old_appsrc);
  if (old_media) g_object_unref(old_media);
  LOG(INFO) << cam->name << ": media created";
}

void RtspServer::Impl::OnMediaUnprepared(GstRTSPMedia* media, gpointer data) {
  Camera* cam = static_cast<Camera*>(data);
  cam->owner->ReleaseMedia(cam, media);
  LOG(INFO) << cam->name << ": media released (no clients)";
}

void RtspServer::Impl::ReleaseMedia(Camera* cam, GstRTSPMedia* only_if) {
  GstElement* appsrc = nullptr;
  GstRTSPMedia* media = nullptr;
  {
    std::lock_guard<std::mutex> lock(cam->mu);
    if (only_if != nullptr && cam->media != only_if) return;
    appsrc = cam->appsrc;
    media = cam->media;
    cam->appsrc = nullptr;
    cam->media = nullptr;
  }
  // At shutdown a media that did not unprepare in time must not call back into a freed camera.
  if (media && only_if == nullptr) g_signal_handlers_disconnect_by_data(media, cam);
  // Unref outside the lock: the last unref of a media may run its teardown.
  if (appsrc) gst_object_unref(appsrc);
  if (media) g_object_unref(media);
}

// RTP header byte 1, bit 7 is the marker bit; rtph264pay sets it on the last packet of an
// access unit (RFC 6184 5.1), so marker packets == frames. Reading the byte directly avoids
// linking gstreamer-rtp for one bit.
GstPadProbeReturn RtspServer::Impl::CountFrames(GstPad*, GstPadProbeInfo* info, gpointer data) {
  FrameCounter& counter = **static_cast<std::shared_ptr<FrameCounter>*>(data);
  auto is_marker = [](GstBuffer* buf) {
    uint8_t b1 = 0;
    return gst_buffer_extract(buf, 1, &b1, 1) == 1 && (b1 & 0x80) != 0;
  };
  uint64_t frames = 0;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    frames += is_marker(GST_PAD_PROBE_INFO_BUFFER(info)) ? 1 : 0;
  } else if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    const guint n = gst_buffer_list_length(list);
    for (guint i = 0; i < n; ++i) frames += is_marker(gst_buffer_list_get(list, i)) ? 1 : 0;
  }
  if (frames) {
    const int64_t now = MonotonicNs();
    std::lock_guard<std::mutex> lock(counter.mu);
    counter.frames += frames;
    counter.last_ns = now;
  }
  return GST_PAD_PROBE_OK;
}

void RtspServer::Impl::PushNext(Camera* cam) {
  GstElement* appsrc = nullptr;
  GstBuffer* buffer = nullptr;
  {
    std::lock_guard<std::mutex> lock(cam->mu);
    if (cam->appsrc == nullptr) return;  // nobody watches this camera
    const size_t index = cam->pushed % cam->units.size();
    buffer = gst_buffer_new();
    gst_buffer_append_memory(buffer, gst_memory_ref(cam->units[index]));  // zero-copy
    const GstClockTime pts =
        gst_util_uint64_scale(cam->pushed, GST_SECOND, static_cast<guint64>(options.fps));
    GST_BUFFER_PTS(buffer) = pts;
    GST_BUFFER_DTS(buffer) = pts;  // no B-frames
    GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(1, GST_SECOND, options.fps);
    if (!cam->keyframe[index]) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    ++cam->pushed;
    appsrc = GST_ELEMENT(gst_object_ref(cam->appsrc));
  }
  // Non-blocking (appsrc block=false): queues the buffer for the appsrc's streaming thread.
  gst_app_src_push_buffer(GST_APP_SRC(appsrc), buffer);
  gst_object_unref(appsrc);
}

void RtspServer::Impl::PusherLoop() {
  // Absolute schedule: tick k is due at t0 + k/fps, so rounding never accumulates and the
  // long-run rate is exactly fps. One thread serves every camera: 30 wake-ups a second
  // instead of 30 per camera.
  int64_t t0 = MonotonicNs();
  uint64_t k = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const int64_t due = t0 + static_cast<int64_t>(k * 1000000000ull / options.fps);
    timespec ts{static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    if (stop.load(std::memory_order_relaxed)) break;
    for (auto& cam : cameras) PushNext(cam.get());
    ++k;
    // After a stall of over a second (host suspended, debugger) restart the schedule instead
    // of bursting the backlog at clients.
    const int64_t lag =
        MonotonicNs() - (t0 + static_cast<int64_t>(k * 1000000000ull / options.fps));
    if (lag > 1000000000) {
      LOG(WARNING) << "pusher fell " << lag / 1000000 << " ms behind schedule; resynchronising";
      t0 = MonotonicNs();
      k = 0;
    }
  }
}

RtspServer::Delivery RtspServer::Poll(size_t camera) {
  Impl::Camera* cam = impl_->cameras[camera].get();
  GstRTSPMedia* media = nullptr;
  {
    std::lock_guard<std::mutex> lock(cam->mu);
    if (cam->media) media = GST_RTSP_MEDIA(g_object_ref(cam->media));
  }
  int clients = 0;
  if (media != nullptr) {
    // A playing client has one transport on the shared stream (added on PLAY, removed on
    // PAUSE/TEARDOWN/disconnect).
    if (GstRTSPStream* stream = gst_rtsp_media_get_stream(media, 0)) {
      gst_rtsp_stream_transport_filter(
          stream,
          [](GstRTSPStream*, GstRTSPStreamTransport*, gpointer count) {
            ++*static_cast<int*>(count);
            return GST_RTSP_FILTER_KEEP;
          },
          &clients);
    }
    g_object_unref(media);
  }
  uint64_t payloaded = 0;
  int64_t last_ns = 0;
  {
    std::lock_guard<std::mutex> lock(cam->payloaded->mu);
    payloaded = cam->payloaded->frames;
    last_ns = cam->payloaded->last_ns;
  }
  // Frames since the last poll count when a client was playing at either end of the window.
  if ((clients > 0 || cam->last_clients > 0) && payloaded != cam->last_payloaded) {
    cam->delivered += payloaded - cam->last_payloaded;
    cam->last_delivered_ns = last_ns;
  }
  cam->last_payloaded = payloaded;
  cam->last_clients = clients;
  return Delivery{clients, cam->delivered, cam->last_delivered_ns};
}

void RtspServer::Impl::Stop() {
  if (stopped) return;
  stopped = true;
  stop.store(true);
  if (pusher_thread.joinable()) pusher_thread.join();
  if (loop_thread.joinable()) {
    // Disconnect every client and drop every session on the server's own thread: medias then
    // unprepare (their pipelines go to NULL) and OnMediaUnprepared releases our refs.
    g_main_context_invoke(
        context,
        [](gpointer data) -> gboolean {
          auto* self = static_cast<Impl*>(data);
          GList* clients = gst_rtsp_server_client_filter(
              self->server,
              [](GstRTSPServer*, GstRTSPClient*, gpointer) { return GST_RTSP_FILTER_REF; },
              nullptr);
          for (GList* l = clients; l != nullptr; l = l->next) {
            gst_rtsp_client_close(GST_RTSP_CLIENT(l->data));
          }
          g_list_free_full(clients, g_object_unref);
          GstRTSPSessionPool* pool = gst_rtsp_server_get_session_pool(self->server);
          gst_rtsp_session_pool_filter(
              pool,
              [](GstRTSPSessionPool*, GstRTSPSession*, gpointer) { return GST_RTSP_FILTER_REMOVE; },
              nullptr);
          g_object_unref(pool);
          return G_SOURCE_REMOVE;
        },
        this);
    // Wait (bounded) for the medias to unprepare.
    const int64_t deadline = MonotonicNs() + 700 * 1000000ll;
    for (;;) {
      bool any = false;
      for (auto& cam : cameras) {
        std::lock_guard<std::mutex> lock(cam->mu);
        any = any || cam->media != nullptr;
      }
      if (!any || MonotonicNs() > deadline) break;
      usleep(10000);
    }
    g_main_loop_quit(loop);
    loop_thread.join();
  }
  if (source_id != 0) {
    if (GSource* source = g_main_context_find_source_by_id(context, source_id)) {
      g_source_destroy(source);
    }
    source_id = 0;
  }
  for (auto& cam : cameras) ReleaseMedia(cam.get());
}

RtspServer::Impl::~Impl() {
  Stop();
  if (server) g_object_unref(server);
  if (loop) g_main_loop_unref(loop);
  if (context) g_main_context_unref(context);
  for (auto& cam : cameras) {
    for (GstMemory* mem : cam->units) gst_memory_unref(mem);
  }
}

StatusOr<std::unique_ptr<RtspServer>> RtspServer::Start(const RtspServerOptions& options,
                                                        std::vector<RtspCamera> cameras) {
  if (cameras.empty()) return Err("no cameras to serve");
  if (options.fps <= 0) return Err("fps must be positive");
  RETURN_IF_ERROR(CheckRtspPortFree(options.host, options.port));
  InitGstreamerOnce();

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (RtspCamera& in : cameras) {
    if (in.loop.units.empty()) return Err(in.name + ": empty loop");
    auto cam = std::make_unique<Impl::Camera>();
    cam->owner = impl.get();
    cam->name = in.name;
    for (AccessUnit& au : in.loop.units) {
      // GStreamer owns a copy; the encoder's vectors are freed when `cameras` goes away.
      const gsize size = au.data.size();
      gpointer copy = g_memdup2(au.data.data(), size);
      cam->units.push_back(
          gst_memory_new_wrapped(GST_MEMORY_FLAG_READONLY, copy, size, 0, size, copy, g_free));
      cam->keyframe.push_back(au.keyframe);
    }
    impl->cameras.push_back(std::move(cam));
  }

  impl->context = g_main_context_new();
  impl->loop = g_main_loop_new(impl->context, FALSE);
  impl->server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(impl->server, options.host.c_str());
  gst_rtsp_server_set_service(impl->server, std::to_string(options.port).c_str());
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(impl->server);
  for (auto& cam : impl->cameras) {
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, kLaunch);
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    g_signal_connect(factory, "media-configure", G_CALLBACK(&Impl::OnMediaConfigure), cam.get());
    gst_rtsp_mount_points_add_factory(mounts, ("/" + cam->name).c_str(), factory);  // owns it
  }
  g_object_unref(mounts);

  impl->source_id = gst_rtsp_server_attach(impl->server, impl->context);
  const std::string where = options.host + ":" + std::to_string(options.port);
  if (impl->source_id == 0) {
    return Err("RTSP server cannot listen on port " + std::to_string(options.port) + " of " +
               options.host +
               " (already in use, or not a local address); choose another with "
               "--port, or --port 0 for any free port");
  }
  impl->port = gst_rtsp_server_get_bound_port(impl->server);
  if (impl->port <= 0 || (options.port != 0 && impl->port != options.port)) {
    return Err("RTSP server bound port " + std::to_string(impl->port) + " instead of " + where);
  }
  Impl* raw = impl.get();
  impl->loop_thread = std::thread([raw] {
    g_main_context_push_thread_default(raw->context);
    g_main_loop_run(raw->loop);
    g_main_context_pop_thread_default(raw->context);
  });
  impl->pusher_thread = std::thread([raw] { raw->PusherLoop(); });
  return std::unique_ptr<RtspServer>(new RtspServer(std::move(impl)));
}

RtspServer::RtspServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RtspServer::~RtspServer() { impl_->Stop(); }
void RtspServer::Stop() { impl_->Stop(); }
int RtspServer::port() const { return impl_->port; }
size_t RtspServer::camera_count() const { return impl_->cameras.size(); }
const std::string& RtspServer::camera_name(size_t camera) const {
  return impl_->cameras[camera]->name;
}

}  // namespace fs::loadgen
