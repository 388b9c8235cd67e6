// Shared-memory frame ring: one per camera, written by `capture`, read by `detection`.
//
// Layout (a POSIX shm object or a file under /dev/shm, mapped by both processes):
//   RingHeader | Slot[0] | Slot[1] | ... | Slot[slot_count-1]
// Each slot is a SlotHeader followed by `frame_bytes` of pixel data (BGR24, width*height*3).
//
// Single writer, any number of readers, no locks. The writer never waits: it always writes
// slot (seq % slot_count), overwriting the oldest frame. Each slot carries a seqlock counter
// (odd while being written) so a reader detects a torn read and retries or skips. Readers
// keep their own cursor; when the writer has lapped a reader, the frames it missed are
// reported as dropped (a slow reader never blocks capture).
#ifndef FRAMESCOPE_SERVICES_COMMON_FRAME_RING_H_
#define FRAMESCOPE_SERVICES_COMMON_FRAME_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/base/status.h"

namespace fs {

constexpr uint64_t kFrameRingMagic = 0x46534652494e4731ULL;  // "FSFRING1"
constexpr uint32_t kFrameRingVersion = 1;

struct FrameMeta {
  uint64_t seq = 0;              // 0-based frame sequence number assigned by the writer
  int64_t capture_ts_ns = 0;     // CLOCK_REALTIME when the frame was decoded
  uint32_t camera_index = 0;     // index in the system's camera list
  uint32_t width = 0;            // pixel data dimensions (as scaled for detection)
  uint32_t height = 0;
  uint32_t source_width = 0;     // the camera's native resolution
  uint32_t source_height = 0;
};

class FrameRingWriter {
 public:
  // Creates (or re-creates) the ring `name` (a path, e.g. /dev/shm/framescope-x-cam00).
  static StatusOr<FrameRingWriter> Create(const std::string& path, uint32_t slot_count,
                                          uint32_t width, uint32_t height, uint32_t camera_index);
  FrameRingWriter(FrameRingWriter&&) noexcept;
  FrameRingWriter& operator=(FrameRingWriter&&) noexcept;
  ~FrameRingWriter();

  // Zero-copy publish: BeginWrite returns the next slot's pixel buffer (width*height*3 bytes);
  // fill it (e.g. sws_scale straight into it), then CommitWrite with the metadata.
  uint8_t* BeginWrite();
  void CommitWrite(int64_t capture_ts_ns, uint32_t source_width, uint32_t source_height);
  // Convenience: copies `bytes` (must be frame_bytes()) and commits.
  void Write(const uint8_t* bytes, int64_t capture_ts_ns, uint32_t source_width,
             uint32_t source_height);

  uint64_t frames_written() const;
  size_t frame_bytes() const;

 private:
  FrameRingWriter() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

class FrameRingReader {
 public:
  static StatusOr<FrameRingReader> Open(const std::string& path);
  FrameRingReader(FrameRingReader&&) noexcept;
  FrameRingReader& operator=(FrameRingReader&&) noexcept;
  ~FrameRingReader();

  // Reads the NEWEST committed frame newer than the last one this reader returned.
  // Returns false if there is none. `skipped` gets the number of frames between the previous
  // read and this one that were never read (either overwritten or deliberately passed over).
  bool ReadLatest(uint8_t* dst, FrameMeta* meta, uint64_t* skipped);
  // Reads the OLDEST unread frame still in the ring (FIFO). `dropped` gets the number of
  // frames overwritten before this reader got to them.
  bool ReadNext(uint8_t* dst, FrameMeta* meta, uint64_t* dropped);
  // Sequence of the newest committed frame + 1 (0 = nothing written yet).
  uint64_t write_seq() const;
  size_t frame_bytes() const;
  uint32_t width() const;
  uint32_t height() const;
  uint32_t camera_index() const;

 private:
  FrameRingReader() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_COMMON_FRAME_RING_H_
