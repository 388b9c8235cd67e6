#include "services/loadgen/encoder.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
}

namespace fs::loadgen {
namespace {

std::string AvError(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct DictDeleter {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};

// Moves every packet the encoder has ready into `loop`.
Status Drain(AVCodecContext* ctx, AVPacket* pkt, EncodedLoop* loop) {
  for (;;) {
    const int rc = avcodec_receive_packet(ctx, pkt);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return Status::Ok();
    if (rc < 0) return Err("libx264 receive_packet: " + AvError(rc));
    AccessUnit au;
    au.data.assign(pkt->data, pkt->data + pkt->size);
    au.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
    loop->units.push_back(std::move(au));
    av_packet_unref(pkt);
  }
}

}  // namespace

size_t EncodedLoop::TotalBytes() const {
  size_t total = 0;
  for (const AccessUnit& au : units) total += au.data.size();
  return total;
}

StatusOr<EncodedLoop> EncodeLoop(const EncoderOptions& options, int frames,
                                 const std::function<void(int, cv::Mat*)>& render) {
  if (frames <= 0) return Err("loop must have at least one frame");
  // x264 prints a dozen lines of statistics per encoder at AV_LOG_INFO; with one encoder per
  // camera that would bury the service log. Warnings and errors still show.
  static std::once_flag quiet;
  std::call_once(quiet, [] {
    if (av_log_get_level() > AV_LOG_WARNING) av_log_set_level(AV_LOG_WARNING);
  });
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (codec == nullptr) {
    return Err(
        "libavcodec has no libx264 encoder (install libavcodec with x264 support, e.g. "
        "Debian's libavcodec59)");
  }
  std::unique_ptr<AVCodecContext, CodecContextDeleter> ctx(avcodec_alloc_context3(codec));
  if (!ctx) return Err("avcodec_alloc_context3 failed");
  const int64_t bitrate =
      options.bitrate_kbps > 0
          ? int64_t{options.bitrate_kbps} * 1000
          : std::max<int64_t>(150000, int64_t{options.width} * options.height * options.fps / 10);
  ctx->width = options.width;
  ctx->height = options.height;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->time_base = AVRational{1, options.fps};
  ctx->framerate = AVRational{options.fps, 1};
  ctx->gop_size = options.fps;  // an IDR every second: a client joins within 1 s
  ctx->keyint_min = options.fps;
  ctx->max_b_frames = 0;
  ctx->bit_rate = bitrate;
  ctx->rc_max_rate = bitrate * 3 / 2;
  ctx->rc_buffer_size = static_cast<int>(bitrate);
  ctx->thread_count = 1;                // parallelism comes from encoding cameras side by side
  ctx->color_range = AVCOL_RANGE_MPEG;  // OpenCV's BGR->I420 is BT.601 limited range
  ctx->colorspace = AVCOL_SPC_SMPTE170M;

  AVDictionary* raw_opts = nullptr;
  av_dict_set(&raw_opts, "preset", "ultrafast", 0);
  av_dict_set(&raw_opts, "tune", "zerolatency", 0);
  av_dict_set(&raw_opts, "forced-idr", "1", 0);  // pict_type I -> IDR, not a recovery point
  const std::string x264_params = "scenecut=0:keyint=" + std::to_string(options.fps) +
                                  ":min-keyint=" + std::to_string(options.fps);
  av_dict_set(&raw_opts, "x264-params", x264_params.c_str(), 0);
  std::unique_ptr<AVDictionary, DictDeleter> opts_owner(nullptr);
  int rc = avcodec_open2(ctx.get(), codec, &raw_opts);
  opts_owner.reset(raw_opts);
  if (rc < 0) return Err("opening libx264 encoder: " + AvError(rc));

  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  if (!frame || !pkt) return Err("out of memory allocating encoder frame");
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = options.width;
  frame->height = options.height;
  rc = av_frame_get_buffer(frame.get(), 0);
  if (rc < 0) return Err("av_frame_get_buffer: " + AvError(rc));

  EncodedLoop loop;
  loop.units.reserve(static_cast<size_t>(frames));
  cv::Mat bgr(options.height, options.width, CV_8UC3);
  cv::Mat i420;
  const int w = options.width;
  const int h = options.height;
  for (int i = 0; i < frames; ++i) {
    render(i, &bgr);
    if (bgr.cols != w || bgr.rows != h || bgr.type() != CV_8UC3) {
      return Err("scene rendered a frame of the wrong size or type");
    }
    // I420 from OpenCV is one contiguous (h*3/2) x w plane set: Y, then U, then V.
    cv::cvtColor(bgr, i420, cv::COLOR_BGR2YUV_I420);
    rc = av_frame_make_writable(frame.get());
    if (rc < 0) return Err("av_frame_make_writable: " + AvError(rc));
    const size_t cw = static_cast<size_t>(w) / 2;  // chroma plane width
    const uint8_t* y = i420.ptr<uint8_t>(0);
    const uint8_t* u = y + static_cast<size_t>(w) * static_cast<size_t>(h);
    const uint8_t* v = u + cw * (static_cast<size_t>(h) / 2);
    for (int row = 0; row < h; ++row) {
      std::memcpy(frame->data[0] + static_cast<ptrdiff_t>(row) * frame->linesize[0],
                  y + static_cast<size_t>(row) * static_cast<size_t>(w), static_cast<size_t>(w));
    }
    for (int row = 0; row < h / 2; ++row) {
      const ptrdiff_t off = static_cast<ptrdiff_t>(row);
      std::memcpy(frame->data[1] + off * frame->linesize[1], u + static_cast<size_t>(row) * cw, cw);
      std::memcpy(frame->data[2] + off * frame->linesize[2], v + static_cast<size_t>(row) * cw, cw);
    }
    frame->pts = i;
    // Force the IDR cadence explicitly as well: the loop's wrap relies on frame 0 being one.
    frame->pict_type = i % options.fps == 0 ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    rc = avcodec_send_frame(ctx.get(), frame.get());
    if (rc < 0) return Err("libx264 send_frame: " + AvError(rc));
    RETURN_IF_ERROR(Drain(ctx.get(), pkt.get(), &loop));
  }
  rc = avcodec_send_frame(ctx.get(), nullptr);
  if (rc < 0) return Err("libx264 flush: " + AvError(rc));
  RETURN_IF_ERROR(Drain(ctx.get(), pkt.get(), &loop));

  if (static_cast<int>(loop.units.size()) != frames) {
    return Err("libx264 produced " + std::to_string(loop.units.size()) + " access units for " +
               std::to_string(frames) + " frames");
  }
  if (!loop.units.front().keyframe) return Err("libx264 did not start the loop with an IDR");
  return loop;
}

}  // namespace fs::loadgen
