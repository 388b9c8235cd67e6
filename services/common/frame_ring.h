// Shared-memory frame ring: one per camera, written by `capture`, read by `detection`.
//
// Layout (a file, normally under /dev/shm, mapped MAP_SHARED by both processes):
//   RingHeader (128 B) | Slot[0] | Slot[1] | ... | Slot[slot_count-1]
// Each slot is a 64-byte SlotHeader followed by `frame_bytes` of pixel data (BGR24,
// width*height*3, rows packed with stride width*3); the slot stride is rounded up to 64 bytes
// so every pixel buffer starts cache-line aligned (swscale's SIMD paths want 16).
//
// Single writer, any number of readers, no locks. The writer never waits: frame `seq` always
// goes to slot (seq % slot_count), overwriting the oldest frame. Each slot carries a seqlock
// word: 2*seq+1 while frame `seq` is being written, 2*seq+2 once it is committed, 0 for a slot
// never written (or whose write was aborted). A reader checks the word before and after copying
// and so detects a torn read; it treats such a frame as lost, never as data. Readers keep their
// own cursor; when the writer has lapped a reader, the frames it missed are reported as dropped
// (a slow reader never blocks capture).
//
// The full on-file format and the memory-ordering argument are in frame_ring.cc.
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
  uint64_t seq = 0;           // 0-based frame sequence number assigned by the writer
  int64_t capture_ts_ns = 0;  // CLOCK_REALTIME when the frame was decoded
  uint32_t camera_index = 0;  // index in the system's camera list
  uint32_t width = 0;         // pixel data dimensions (as scaled for detection)
  uint32_t height = 0;
  uint32_t source_width = 0;  // the camera's native resolution
  uint32_t source_height = 0;
};

class FrameRingWriter {
 public:
  // Creates (or re-creates) the ring at `path` (e.g. /dev/shm/framescope-cam00.ring).
  // The file is built under a temporary name and renamed into place, so a reader never maps a
  // half-initialised ring; a reader still attached to a previous ring at the same path keeps
  // its old mapping and can notice the swap with FrameRingReader::Replaced(). Memory is
  // reserved up front (posix_fallocate), so a full /dev/shm is an error here, not a SIGBUS
  // later. slot_count must be >= 2.
  static StatusOr<FrameRingWriter> Create(const std::string& path, uint32_t slot_count,
                                          uint32_t width, uint32_t height, uint32_t camera_index);
  FrameRingWriter(FrameRingWriter&&) noexcept;
  FrameRingWriter& operator=(FrameRingWriter&&) noexcept;
  ~FrameRingWriter();  // Unmaps; leaves the file in place for readers.

  // Zero-copy publish: BeginWrite returns the next slot's pixel buffer (frame_bytes() bytes,
  // row stride width*3); fill it (e.g. sws_scale straight into it), then CommitWrite with the
  // metadata, or AbortWrite if filling failed. From BeginWrite on, the frame previously held
  // by that slot (seq - slot_count) is gone for readers.
  uint8_t* BeginWrite();
  void CommitWrite(int64_t capture_ts_ns, uint32_t source_width, uint32_t source_height);
  // Abandons the write begun by BeginWrite: the slot is marked empty and the sequence number
  // is not consumed (the next BeginWrite reuses it).
  void AbortWrite();
  // Convenience: copies `bytes` (must be frame_bytes()) and commits.
  void Write(const uint8_t* bytes, int64_t capture_ts_ns, uint32_t source_width,
             uint32_t source_height);

  uint64_t frames_written() const;
  size_t frame_bytes() const;
  const std::string& path() const;

 private:
  FrameRingWriter() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

class FrameRingReader {
 public:
  // Maps an existing ring read-only. Errors name the path and the problem: missing file,
  // not a frame ring (bad magic), a different format version, a header that makes no sense,
  // or a file shorter than its header says (truncated).
  // A reader that attaches mid-stream starts at the newest committed frame: that frame is the
  // first one returned, and frames committed before it are neither returned nor counted as
  // dropped/skipped (they belong to no reader's history).
  static StatusOr<FrameRingReader> Open(const std::string& path);
  FrameRingReader(FrameRingReader&&) noexcept;
  FrameRingReader& operator=(FrameRingReader&&) noexcept;
  ~FrameRingReader();

  // `dst` must hold frame_bytes(). On false, `dst`, `meta` and the out-count are untouched.
  //
  // Reads the NEWEST committed frame newer than the last one this reader returned.
  // Returns false if there is none. `skipped` gets the number of frames between the previous
  // read and this one that were never read (either overwritten or deliberately passed over).
  bool ReadLatest(uint8_t* dst, FrameMeta* meta, uint64_t* skipped);
  // Reads the OLDEST unread frame still in the ring (FIFO). `dropped` gets the number of
  // frames overwritten before this reader got to them (including one torn by the writer while
  // it was being copied).
  bool ReadNext(uint8_t* dst, FrameMeta* meta, uint64_t* dropped);
  // Sequence of the newest committed frame + 1 (0 = nothing written yet).
  uint64_t write_seq() const;
  // True when `path` no longer names the mapped file (the writer restarted and re-created the
  // ring, or it was deleted): reopen to follow the new writer.
  bool Replaced() const;
  size_t frame_bytes() const;
  uint32_t width() const;
  uint32_t height() const;
  uint32_t camera_index() const;
  uint32_t slot_count() const;

 private:
  FrameRingReader() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_COMMON_FRAME_RING_H_
