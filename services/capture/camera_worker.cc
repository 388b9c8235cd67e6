#include "services/capture/camera_worker.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cstdarg>
#include <cstring>
#include <memory>
#include <mutex>

#include "src/base/clock.h"
#include "src/base/logging.h"

namespace fs {
namespace {

// --- libav glue ------------------------------------------------------------------------------

std::string AvError(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

// libav logs from every camera thread; route its errors through our logger and cap the rate
// so a corrupt stream (one "error while decoding MB" per macroblock row) cannot flood stderr.
void AvLogCallback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > av_log_get_level()) return;
  static std::atomic<int64_t> window{0};
  static std::atomic<int> in_window{0};
  constexpr int kMaxLinesPerSecond = 20;
  const int64_t second = MonotonicNs() / 1000000000;
  if (window.exchange(second) != second) in_window.store(0);
  if (in_window.fetch_add(1) >= kMaxLinesPerSecond) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  if (n == 0) return;
  LOG(WARNING) << "libav: " << line;
}

void InitLibavOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    avformat_network_init();
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(AvLogCallback);
  });
}

struct FormatCloser {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecFreer {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;

// The deprecated "J" formats mean "full range"; swscale wants the plain format plus a range.
AVPixelFormat NormalizeFormat(AVPixelFormat fmt, bool* full_range) {
  switch (fmt) {
    case AV_PIX_FMT_YUVJ420P:
      *full_range = true;
      return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
      *full_range = true;
      return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
      *full_range = true;
      return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
      *full_range = true;
      return AV_PIX_FMT_YUV440P;
    default:
      return fmt;
  }
}

const char* StateName(int state) {
  static const char* const kNames[] = {"connecting", "streaming", "reconnecting", "stopped"};
  return kNames[state];
}

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

CameraWorker::CameraWorker(CaptureCamera camera, const CaptureOptions& options,
                           FrameRingWriter ring)
    : camera_(std::move(camera)), options_(options), ring_(std::move(ring)) {
  InitLibavOnce();
  MetricsRegistry& m = Metrics();
  const Labels cam = {{"service", "capture"}, {"camera", camera_.name}};
  auto with = [&](const char* key, const char* value) {
    Labels l = cam;
    l[key] = value;
    return l;
  };
  frames_in_ = m.GetCounter("framescope_frames_in_total", "Frames received by the stage.", cam);
  frames_out_ = m.GetCounter("framescope_frames_out_total", "Frames passed on by the stage.", cam);
  const char* kDroppedHelp = "Frames the stage discarded, by reason.";
  dropped_decode_error_ =
      m.GetCounter("framescope_frames_dropped_total", kDroppedHelp, with("reason", "decode_error"));
  dropped_corrupt_ =
      m.GetCounter("framescope_frames_dropped_total", kDroppedHelp, with("reason", "corrupt"));
  dropped_convert_error_ = m.GetCounter("framescope_frames_dropped_total", kDroppedHelp,
                                        with("reason", "convert_error"));
  reconnects_total_ =
      m.GetCounter("framescope_camera_reconnects_total",
                   "Reconnect attempts after a camera was lost or unreachable.", cam);
  connected_ = m.GetGauge("framescope_camera_connected",
                          "1 while an RTSP session with the camera is open.", cam);
  const char* kLatencyHelp = "Time spent in one pipeline stage per frame.";
  decode_latency_ =
      m.GetHistogram("framescope_stage_latency_seconds", kLatencyHelp,
                     {{"service", "capture"}, {"stage", "decode"}}, LatencyBucketsSeconds());
  convert_latency_ =
      m.GetHistogram("framescope_stage_latency_seconds", kLatencyHelp,
                     {{"service", "capture"}, {"stage", "convert"}}, LatencyBucketsSeconds());
}

CameraWorker::~CameraWorker() {
  RequestStop();
  Join();
  sws_freeContext(sws_);
}

void CameraWorker::Start() {
  CHECK(!thread_.joinable()) << "CameraWorker started twice";
  thread_ = std::thread([this] { Run(); });
}

void CameraWorker::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    stop_.store(true);
  }
  wait_cv_.notify_all();
}

void CameraWorker::Join() {
  if (thread_.joinable()) thread_.join();
}

CameraSnapshot CameraWorker::Snapshot() const {
  CameraSnapshot s;
  s.name = camera_.name;
  s.url = RedactUrl(camera_.url);
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.state = StateName(static_cast<int>(state_));
    s.last_error = last_error_;
  }
  s.frames = published_.load();
  s.reconnects = reconnects_.load();
  s.fps = decode_rate_.Rate();
  return s;
}

void CameraWorker::SetState(State state) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = state;
}

void CameraWorker::SetError(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = error;
}

void CameraWorker::ArmDeadline(int timeout_ms) {
  deadline_ns_.store(MonotonicNs() + int64_t{timeout_ms} * 1000000, std::memory_order_relaxed);
  timed_out_.store(false, std::memory_order_relaxed);
}

// libav polls this from inside blocking calls (connect, RTSP handshake, reads: roughly every
// 100 ms while waiting); non-zero makes the call fail with AVERROR_EXIT. It is our guarantee
// that neither a stop request nor a dead camera can wedge the thread, whatever the socket
// timeouts do.
int CameraWorker::InterruptCallback(void* opaque) {
  auto* self = static_cast<CameraWorker*>(opaque);
  if (self->stop_.load(std::memory_order_relaxed)) return 1;
  const int64_t deadline = self->deadline_ns_.load(std::memory_order_relaxed);
  if (deadline != 0 && MonotonicNs() > deadline) {
    self->timed_out_.store(true, std::memory_order_relaxed);
    return 1;
  }
  return 0;
}

void CameraWorker::Run() {
  Backoff backoff(options_.initial_backoff_ms, options_.max_backoff_ms);
  const std::string url = RedactUrl(camera_.url);
  LOG(INFO) << camera_.name << ": capturing " << url << " -> " << camera_.ring_path;
  while (!stop_.load()) {
    session_frames_ = 0;
    Status st = StreamOnce();
    connected_->Set(0);
    if (stop_.load()) break;
    if (session_frames_ > 0) backoff.Reset();  // it worked for a while: retry quickly
    const std::string error = st.ok() ? "stream ended" : st.message();
    SetError(error);
    SetState(State::kReconnecting);
    const int delay_ms = backoff.NextDelayMs();
    LOG(WARNING) << camera_.name << ": " << error << "; reconnecting in " << delay_ms << " ms";
    {
      std::unique_lock<std::mutex> lock(wait_mu_);
      wait_cv_.wait_for(lock, std::chrono::milliseconds(delay_ms), [this] { return stop_.load(); });
    }
    if (stop_.load()) break;
    reconnects_.fetch_add(1);
    reconnects_total_->Inc();
  }
  SetState(State::kStopped);
}

Status CameraWorker::StreamOnce() {
  const std::string url = RedactUrl(camera_.url);
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return Err("out of memory allocating the demuxer");
  raw->interrupt_callback.callback = &CameraWorker::InterruptCallback;
  raw->interrupt_callback.opaque = this;

  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "rtsp_transport", options_.transport == RtspTransport::kTcp ? "tcp" : "udp",
              0);
  // FFmpeg >= 5.0 (we build against 5.1): the RTSP demuxer's socket I/O timeout is "timeout",
  // in microseconds; it bounds the TCP connect and each blocking read/write of the session
  // ("stimeout" was its name up to 4.4, and there "timeout" meant the listen timeout).
  av_dict_set_int(&opts, "timeout", int64_t{options_.connect_timeout_ms} * 1000, 0);
  av_dict_set(&opts, "allowed_media_types", "video", 0);
  if (options_.transport == RtspTransport::kUdp) {
    av_dict_set_int(&opts, "buffer_size", 4 << 20, 0);  // absorb key-frame bursts
  }
  ArmDeadline(options_.connect_timeout_ms);
  int rc = avformat_open_input(&raw, camera_.url.c_str(), nullptr, &opts);  // frees raw on error
  av_dict_free(&opts);
  if (stop_.load()) {
    if (rc >= 0) avformat_close_input(&raw);
    return Status::Ok();
  }
  if (rc < 0) {
    if (timed_out_) {
      return Err("connecting to " + url + ": no answer within " +
                 std::to_string(options_.connect_timeout_ms) + " ms");
    }
    return Err("connecting to " + url + ": " + AvError(rc));
  }
  FormatPtr fmt(raw);
  // Destroyed before `fmt` (declared after it): gives the RTSP TEARDOWN in
  // avformat_close_input a fresh second instead of an already expired read deadline.
  struct TeardownBudget {
    CameraWorker* self;
    ~TeardownBudget() { self->ArmDeadline(1000); }
  } teardown_budget{this};

  // No avformat_find_stream_info(): the SDP already names the codec (and usually carries
  // SPS/PPS), and probing would decode and discard the first frames just to learn their size.
  const int vs = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (vs < 0) return Err(url + " offers no video stream");
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (static_cast<int>(i) != vs) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVCodecParameters* par = fmt->streams[vs]->codecpar;
  const AVCodec* decoder = avcodec_find_decoder(par->codec_id);
  if (decoder == nullptr) {
    return Err(url + ": no decoder for codec " + avcodec_get_name(par->codec_id));
  }
  CodecPtr ctx(avcodec_alloc_context3(decoder));
  if (!ctx) return Err("out of memory allocating the decoder");
  if ((rc = avcodec_parameters_to_context(ctx.get(), par)) < 0) {
    return Err(url + ": decoder parameters: " + AvError(rc));
  }
  // One decoding thread per camera: cameras already run in parallel, and frame threading
  // would add a frame of latency per extra thread.
  ctx->thread_count = 1;
  if ((rc = avcodec_open2(ctx.get(), decoder, nullptr)) < 0) {
    return Err(url + ": opening " + decoder->name + " decoder: " + AvError(rc));
  }
  connected_->Set(1);
  LOG(INFO) << camera_.name << ": connected to " << url << " (" << decoder->name << ")";

  PacketPtr pkt(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  if (!pkt || !frame) return Err("out of memory allocating packet/frame");
  for (;;) {
    // A connected camera that goes silent for the connect timeout counts as lost.
    ArmDeadline(options_.connect_timeout_ms);
    rc = av_read_frame(fmt.get(), pkt.get());
    if (stop_.load()) return Status::Ok();
    if (rc < 0) {
      if (timed_out_) {
        return Err("no data from " + url + " for " + std::to_string(options_.connect_timeout_ms) +
                   " ms");
      }
      if (rc == AVERROR_EOF) return Err(url + ": stream ended (EOF)");
      return Err("reading from " + url + ": " + AvError(rc));
    }
    if (pkt->stream_index != vs) {
      av_packet_unref(pkt.get());
      continue;
    }
    const int64_t decode_start = MonotonicNs();
    rc = avcodec_send_packet(ctx.get(), pkt.get());
    av_packet_unref(pkt.get());
    if (rc < 0) {
      // The packet's frame is lost; the decoder resynchronises on its own.
      dropped_decode_error_->Inc();
      continue;
    }
    while ((rc = avcodec_receive_frame(ctx.get(), frame.get())) >= 0) {
      PublishFrame(frame.get(), decode_start);
      av_frame_unref(frame.get());
    }
    if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) dropped_decode_error_->Inc();
  }
}

bool CameraWorker::EnsureScaler(const AVFrame* frame) {
  bool full_range = frame->color_range == AVCOL_RANGE_JPEG;
  const AVPixelFormat fmt = NormalizeFormat(static_cast<AVPixelFormat>(frame->format), &full_range);
  if (sws_ != nullptr && frame->width == sws_width_ && frame->height == sws_height_ &&
      fmt == sws_format_ && full_range == sws_full_range_) {
    return true;
  }
  sws_freeContext(sws_);
  // SWS_BILINEAR widens its taps with the downscale factor, so a 1080p camera scaled to
  // 416x416 does not alias badly, at a fraction of bicubic's cost (capture's CPU is per stream).
  // The aspect ratio is not preserved: the ring records the source size so detection can map
  // boxes back.
  sws_ = sws_getContext(frame->width, frame->height, fmt, options_.width, options_.height,
                        AV_PIX_FMT_BGR24, SWS_BILINEAR, nullptr, nullptr, nullptr);
  sws_width_ = frame->width;
  sws_height_ = frame->height;
  sws_format_ = fmt;
  sws_full_range_ = full_range;
  if (sws_ == nullptr) {
    LOG(ERROR) << camera_.name << ": cannot convert " << frame->width << "x" << frame->height << " "
               << (av_get_pix_fmt_name(fmt) ? av_get_pix_fmt_name(fmt) : "?") << " to BGR24";
    return false;
  }
  const int* coeffs = sws_getCoefficients(SWS_CS_DEFAULT);
  sws_setColorspaceDetails(sws_, coeffs, full_range ? 1 : 0, coeffs, /*dstRange=*/1,
                           /*brightness=*/0, /*contrast=*/1 << 16, /*saturation=*/1 << 16);
  LOG(INFO) << camera_.name << ": source " << frame->width << "x" << frame->height << " "
            << (av_get_pix_fmt_name(fmt) ? av_get_pix_fmt_name(fmt) : "?") << " -> BGR24 "
            << options_.width << "x" << options_.height;
  return true;
}

void CameraWorker::PublishFrame(const AVFrame* frame, int64_t decode_start_ns) {
  // The capture timestamp: wall clock when the decoder hands us the frame.
  const int64_t capture_ts = WallNs();
  const int64_t decoded = MonotonicNs();
  decode_latency_->Observe(Seconds(decoded - decode_start_ns));
  frames_in_->Inc();
  decode_rate_.Add();
  if ((frame->flags & AV_FRAME_FLAG_CORRUPT) != 0 || frame->decode_error_flags != 0) {
    dropped_corrupt_->Inc();  // concealed or missing references: not worth detecting on
    return;
  }
  if (!EnsureScaler(frame)) {
    dropped_convert_error_->Inc();
    return;
  }
  uint8_t* dst = ring_.BeginWrite();
  uint8_t* planes[4] = {dst, nullptr, nullptr, nullptr};
  int strides[4] = {options_.width * 3, 0, 0, 0};
  const int rows = sws_scale(sws_, frame->data, frame->linesize, 0, frame->height, planes, strides);
  if (rows <= 0) {
    ring_.AbortWrite();
    dropped_convert_error_->Inc();
    return;
  }
  ring_.CommitWrite(capture_ts, static_cast<uint32_t>(frame->width),
                    static_cast<uint32_t>(frame->height));
  convert_latency_->Observe(Seconds(MonotonicNs() - decoded));
  frames_out_->Inc();
  published_.fetch_add(1);
  if (session_frames_++ == 0) SetState(State::kStreaming);
}

}  // namespace fs
