// Encodes a camera's loop to H.264 once, at startup, so serving costs no encoding.
//
// The loop is shaped so that repeating it forever is a valid, seamless H.264 stream:
//  - frame 0 is an IDR and an IDR follows every `fps` frames (keyint = fps, scenecut off),
//    so a client joins within one second and the wrap from the last frame to frame 0 lands on
//    an IDR (no reference crosses it);
//  - no B-frames (tune zerolatency): decode order equals presentation order, DTS == PTS;
//  - SPS/PPS are repeated in-band before every IDR (Annex-B byte stream, no global header).
#ifndef FRAMESCOPE_SERVICES_LOADGEN_ENCODER_H_
#define FRAMESCOPE_SERVICES_LOADGEN_ENCODER_H_

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <vector>

#include "src/base/status.h"

namespace fs::loadgen {

struct EncoderOptions {
  int width = 640;
  int height = 360;
  int fps = 30;
  // Target bitrate; 0 picks ~0.1 bit per pixel (about 700 kbit/s at 640x360x30), in the range
  // of a real surveillance camera's sub-stream.
  int bitrate_kbps = 0;
};

// One H.264 access unit (one frame), Annex-B with start codes.
struct AccessUnit {
  std::vector<uint8_t> data;
  bool keyframe = false;
};

struct EncodedLoop {
  std::vector<AccessUnit> units;  // exactly one per frame, in presentation order
  size_t TotalBytes() const;
};

// Renders `frames` frames with `render(frame_index, &bgr)` (BGR, width x height) and encodes
// them with libx264 (ultrafast / zerolatency). Thread-safe: cameras encode in parallel.
StatusOr<EncodedLoop> EncodeLoop(const EncoderOptions& options, int frames,
                                 const std::function<void(int, cv::Mat*)>& render);

}  // namespace fs::loadgen

#endif  // FRAMESCOPE_SERVICES_LOADGEN_ENCODER_H_
