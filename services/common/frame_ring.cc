#include "services/common/frame_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <utility>

#include "src/base/logging.h"

// On-file format, version 1 (all integers little-endian host order; both ends run on one host).
//
//   offset  size  RingHeader
//        0     8  magic "FSFRING1" (kFrameRingMagic)
//        8     4  version (kFrameRingVersion)
//       12     4  header_bytes (128)
//       16     4  slot_count (>= 2)
//       20     4  width
//       24     4  height
//       28     4  camera_index
//       32     8  frame_bytes (width * height * 3)
//       40     8  slot_stride (64 + frame_bytes, rounded up to 64)
//       48     8  total_bytes (header_bytes + slot_count * slot_stride)
//       64     8  write_seq: number of committed frames (atomic; own cache line)
//
//   offset  size  SlotHeader, at header_bytes + i * slot_stride
//        0     8  lock: seqlock word (atomic), see frame_ring.h
//        8     8  capture_ts_ns
//       16     4  source_width
//       20     4  source_height
//       64     -  pixels (frame_bytes)
//
// Memory ordering. Writer and readers live in different processes, so the only shared state is
// the mapping; every word that is written while others may read it is accessed through
// std::atomic_ref (lock-free, hence address-free, so it works across processes). The argument
// is the classic seqlock one (Boehm, "Can Seqlocks Get Along With Programming Language Memory
// Models?", MSPC 2012):
//
//   writer (frame s, slot i)                      reader (wants frame s from slot i)
//   W1 lock.store(2s+1, relaxed)                  R1 w = write_seq.load(acquire)
//   W2 atomic_thread_fence(release)               R2 v1 = lock.load(acquire); v1 == 2s+2 ?
//   W3 pixels + metadata stores                   R3 metadata + pixel loads
//   W4 lock.store(2s+2, release)                  R4 atomic_thread_fence(acquire)
//   W5 write_seq.store(s+1, release)              R5 v2 = lock.load(relaxed); v2 == v1 ?
//
// * W4 (release) -> R2 (acquire) and W5 -> R1: a reader that sees write_seq > s or lock == 2s+2
//   also sees every pixel of frame s, because those stores precede the release.
// * Torn reads: if any load in R3 observed a store from W3 of a LATER write into slot i, then
//   the release fence W2 synchronises with the acquire fence R4, so W1 (the odd value, or
//   something later still) happens-before R5, and R5 cannot return v1: the copy is discarded.
//   R4 also stops the compiler and CPU from sinking the R3 loads below R5.
// * Pixels are written by sws_scale/memcpy and read by memcpy, i.e. with plain (non-atomic)
//   accesses. Formally that is a data race in the C++ model, which does not describe memory
//   shared between processes anyway; in practice the fences above are full compiler barriers
//   and map to the required hardware ordering (plain MOVs on x86-TSO, DMB ISHLD/ISH on Arm),
//   and any copy that overlapped a write is rejected by the R5 check, so no torn frame is ever
//   returned. Metadata words use relaxed atomics so that at least they are race-free.
// * write_seq only ever increases (single writer), so a reader's cursor arithmetic is monotone.

namespace fs {
namespace {

constexpr uint32_t kHeaderBytes = 128;
constexpr uint64_t kSlotHeaderBytes = 64;
constexpr uint64_t kAlign = 64;
// Generous bound that keeps all size arithmetic far from overflow (16k x 16k BGR).
constexpr uint64_t kMaxFrameBytes = uint64_t{16384} * 16384 * 3;
constexpr uint32_t kMaxSlots = 4096;

struct RingHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;
  uint32_t slot_count;
  uint32_t width;
  uint32_t height;
  uint32_t camera_index;
  uint64_t frame_bytes;
  uint64_t slot_stride;
  uint64_t total_bytes;
  uint8_t reserved0[8];
  alignas(64) uint64_t write_seq;  // separate cache line: the only hot header word
  uint8_t reserved1[56];
};
static_assert(sizeof(RingHeader) == kHeaderBytes);
static_assert(offsetof(RingHeader, frame_bytes) == 32);
static_assert(offsetof(RingHeader, write_seq) == 64);

struct SlotHeader {
  uint64_t lock;
  int64_t capture_ts_ns;
  uint32_t source_width;
  uint32_t source_height;
  uint8_t reserved[40];
};
static_assert(sizeof(SlotHeader) == kSlotHeaderBytes);

using AtomicU64 = std::atomic_ref<uint64_t>;
using AtomicI64 = std::atomic_ref<int64_t>;
using AtomicU32 = std::atomic_ref<uint32_t>;
static_assert(AtomicU64::is_always_lock_free && AtomicI64::is_always_lock_free &&
                  AtomicU32::is_always_lock_free,
              "shared-memory atomics must be lock-free to be address-free across processes");
static_assert(AtomicU64::required_alignment <= 8);

uint64_t SlotStride(uint64_t frame_bytes) {
  return (kSlotHeaderBytes + frame_bytes + kAlign - 1) / kAlign * kAlign;
}

// Readers map the ring PROT_READ; an 8-byte atomic load is a plain load on every target we
// build for (no read-modify-write), so loading through a const_cast is safe on that mapping.
template <typename T>
T LoadAcquire(const T& word) {
  return std::atomic_ref<T>(const_cast<T&>(word)).load(std::memory_order_acquire);
}
template <typename T>
T LoadRelaxed(const T& word) {
  return std::atomic_ref<T>(const_cast<T&>(word)).load(std::memory_order_relaxed);
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + strerror(errno);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer

struct FrameRingWriter::Impl {
  std::string path;
  uint8_t* base = nullptr;
  size_t total_bytes = 0;
  RingHeader* header = nullptr;
  uint32_t slot_count = 0;
  uint64_t frame_bytes = 0;
  uint64_t slot_stride = 0;
  uint64_t next_seq = 0;  // writer-private copy of write_seq
  bool writing = false;

  SlotHeader* Slot(uint64_t seq) const {
    return reinterpret_cast<SlotHeader*>(base + kHeaderBytes + (seq % slot_count) * slot_stride);
  }
  ~Impl() {
    if (base != nullptr) munmap(base, total_bytes);
  }
};

StatusOr<FrameRingWriter> FrameRingWriter::Create(const std::string& path, uint32_t slot_count,
                                                  uint32_t width, uint32_t height,
                                                  uint32_t camera_index) {
  const std::string what = "creating frame ring " + path;
  if (slot_count < 2 || slot_count > kMaxSlots) {
    return Err(what + ": slot count " + std::to_string(slot_count) + " is outside [2, " +
               std::to_string(kMaxSlots) + "]");
  }
  const uint64_t frame_bytes = uint64_t{width} * height * 3;
  if (width == 0 || height == 0 || frame_bytes > kMaxFrameBytes) {
    return Err(what + ": frame size " + std::to_string(width) + "x" + std::to_string(height) +
               " is out of range");
  }
  const uint64_t stride = SlotStride(frame_bytes);
  const uint64_t total = kHeaderBytes + uint64_t{slot_count} * stride;

  // Build under a private name, publish with rename(2): readers either see the old ring, no
  // ring, or this one fully initialised.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Err(Errno("cannot create", tmp) + " (does the ring directory exist?)");
  auto fail = [&](const std::string& msg) {
    close(fd);
    unlink(tmp.c_str());
    return Err(msg);
  };
  // posix_fallocate returns the error instead of setting errno. On tmpfs it reserves the pages
  // now, so running out of /dev/shm is reported here rather than as SIGBUS on first touch.
  if (int rc = posix_fallocate(fd, 0, static_cast<off_t>(total)); rc != 0) {
    return fail(what + ": cannot reserve " + std::to_string(total) + " bytes: " + strerror(rc));
  }
  void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return fail(Errno("cannot mmap", tmp));
  close(fd);  // the mapping keeps the file alive

  auto impl = new Impl;
  impl->path = path;
  impl->base = static_cast<uint8_t*>(mem);
  impl->total_bytes = total;
  impl->header = reinterpret_cast<RingHeader*>(mem);
  impl->slot_count = slot_count;
  impl->frame_bytes = frame_bytes;
  impl->slot_stride = stride;

  // The file is fresh (all zero) and invisible to readers, so plain stores suffice here; the
  // rename below is the publication point.
  RingHeader* h = impl->header;
  h->magic = kFrameRingMagic;
  h->version = kFrameRingVersion;
  h->header_bytes = kHeaderBytes;
  h->slot_count = slot_count;
  h->width = width;
  h->height = height;
  h->camera_index = camera_index;
  h->frame_bytes = frame_bytes;
  h->slot_stride = stride;
  h->total_bytes = total;
  h->write_seq = 0;

  if (rename(tmp.c_str(), path.c_str()) != 0) {
    std::string msg = Errno("cannot rename " + tmp + " to", path);
    delete impl;
    unlink(tmp.c_str());
    return Err(what + ": " + msg);
  }
  FrameRingWriter writer;
  writer.impl_ = impl;
  return writer;
}

FrameRingWriter::FrameRingWriter(FrameRingWriter&& o) noexcept
    : impl_(std::exchange(o.impl_, nullptr)) {}

FrameRingWriter& FrameRingWriter::operator=(FrameRingWriter&& o) noexcept {
  if (this != &o) {
    delete impl_;
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}

FrameRingWriter::~FrameRingWriter() { delete impl_; }

uint8_t* FrameRingWriter::BeginWrite() {
  CHECK(impl_ != nullptr) << "BeginWrite on a moved-from FrameRingWriter";
  CHECK(!impl_->writing) << "BeginWrite twice without CommitWrite/AbortWrite";
  impl_->writing = true;
  const uint64_t seq = impl_->next_seq;
  SlotHeader* slot = impl_->Slot(seq);
  // W1 + W2 (see top of file): odd lock first, then a release fence so no pixel store of this
  // frame can become visible before a reader can tell the slot is being rewritten.
  AtomicU64(slot->lock).store(2 * seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  return reinterpret_cast<uint8_t*>(slot) + kSlotHeaderBytes;
}

void FrameRingWriter::CommitWrite(int64_t capture_ts_ns, uint32_t source_width,
                                  uint32_t source_height) {
  CHECK(impl_ != nullptr && impl_->writing) << "CommitWrite without BeginWrite";
  const uint64_t seq = impl_->next_seq;
  SlotHeader* slot = impl_->Slot(seq);
  AtomicI64(slot->capture_ts_ns).store(capture_ts_ns, std::memory_order_relaxed);
  AtomicU32(slot->source_width).store(source_width, std::memory_order_relaxed);
  AtomicU32(slot->source_height).store(source_height, std::memory_order_relaxed);
  // W4: publishes pixels + metadata of frame `seq` to any reader that acquires lock == 2s+2.
  AtomicU64(slot->lock).store(2 * seq + 2, std::memory_order_release);
  // W5: publishes the frame to readers polling write_seq. After W4, so a reader that sees
  // write_seq > seq finds the slot already committed (or already overwritten by a later frame).
  AtomicU64(impl_->header->write_seq).store(seq + 1, std::memory_order_release);
  impl_->next_seq = seq + 1;
  impl_->writing = false;
}

void FrameRingWriter::AbortWrite() {
  CHECK(impl_ != nullptr && impl_->writing) << "AbortWrite without BeginWrite";
  SlotHeader* slot = impl_->Slot(impl_->next_seq);
  // 0 matches no frame: a reader that wanted the slot's previous frame counts it as lost.
  AtomicU64(slot->lock).store(0, std::memory_order_release);
  impl_->writing = false;
}

void FrameRingWriter::Write(const uint8_t* bytes, int64_t capture_ts_ns, uint32_t source_width,
                            uint32_t source_height) {
  uint8_t* dst = BeginWrite();
  memcpy(dst, bytes, impl_->frame_bytes);
  CommitWrite(capture_ts_ns, source_width, source_height);
}

uint64_t FrameRingWriter::frames_written() const { return impl_ ? impl_->next_seq : 0; }
size_t FrameRingWriter::frame_bytes() const { return impl_ ? impl_->frame_bytes : 0; }
const std::string& FrameRingWriter::path() const {
  static const std::string kEmpty;
  return impl_ ? impl_->path : kEmpty;
}

// ---------------------------------------------------------------------------------------------
// Reader

struct FrameRingReader::Impl {
  std::string path;
  const uint8_t* base = nullptr;
  size_t total_bytes = 0;
  const RingHeader* header = nullptr;
  uint32_t slot_count = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t camera_index = 0;
  uint64_t frame_bytes = 0;
  uint64_t slot_stride = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t cursor = 0;  // next frame this reader has not yet returned or accounted for

  const SlotHeader* Slot(uint64_t seq) const {
    return reinterpret_cast<const SlotHeader*>(base + kHeaderBytes +
                                               (seq % slot_count) * slot_stride);
  }
  uint64_t WriteSeq() const { return LoadAcquire(header->write_seq); }

  // Copies frame `seq` if its slot still (and consistently) holds it. False means the frame is
  // gone: overwritten before or during the copy (or its slot's write was aborted).
  bool TryCopy(uint64_t seq, uint8_t* dst, FrameMeta* meta) const {
    const SlotHeader* slot = Slot(seq);
    const uint64_t want = 2 * seq + 2;
    if (LoadAcquire(slot->lock) != want) return false;    // R2
    const int64_t ts = LoadRelaxed(slot->capture_ts_ns);  // R3
    const uint32_t sw = LoadRelaxed(slot->source_width);
    const uint32_t sh = LoadRelaxed(slot->source_height);
    memcpy(dst, reinterpret_cast<const uint8_t*>(slot) + kSlotHeaderBytes, frame_bytes);
    std::atomic_thread_fence(std::memory_order_acquire);  // R4
    if (LoadRelaxed(slot->lock) != want) return false;    // R5
    meta->seq = seq;
    meta->capture_ts_ns = ts;
    meta->camera_index = camera_index;
    meta->width = width;
    meta->height = height;
    meta->source_width = sw;
    meta->source_height = sh;
    return true;
  }

  ~Impl() {
    if (base != nullptr) munmap(const_cast<uint8_t*>(base), total_bytes);
  }
};

StatusOr<FrameRingReader> FrameRingReader::Open(const std::string& path) {
  const std::string what = "opening frame ring " + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return Err(what + ": no such file (is capture running with this --ring-dir/--ring-prefix?)");
    }
    return Err(what + ": " + strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    std::string msg = what + ": fstat: " + strerror(errno);
    close(fd);
    return Err(msg);
  }
  auto fail = [&](const std::string& msg) {
    close(fd);
    return Err(what + ": " + msg);
  };
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes) {
    return fail("truncated: file is " + std::to_string(size) + " bytes, smaller than the " +
                std::to_string(kHeaderBytes) + "-byte ring header");
  }
  RingHeader h{};
  if (pread(fd, &h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h))) {
    return fail(std::string("cannot read header: ") + strerror(errno));
  }
  if (h.magic != kFrameRingMagic) {
    char buf[32];
    snprintf(buf, sizeof(buf), "0x%016" PRIx64, h.magic);
    return fail(std::string("not a framescope frame ring (magic ") + buf + ")");
  }
  if (h.version != kFrameRingVersion) {
    return fail("ring format version " + std::to_string(h.version) + ", this build reads " +
                std::to_string(kFrameRingVersion) +
                " (run capture and its readers from one build)");
  }
  const uint64_t frame_bytes = uint64_t{h.width} * h.height * 3;
  if (h.header_bytes != kHeaderBytes || h.slot_count < 2 || h.slot_count > kMaxSlots ||
      h.width == 0 || h.height == 0 || frame_bytes > kMaxFrameBytes ||
      h.frame_bytes != frame_bytes || h.slot_stride != SlotStride(frame_bytes) ||
      h.total_bytes != kHeaderBytes + uint64_t{h.slot_count} * h.slot_stride) {
    return fail("corrupt header (slots=" + std::to_string(h.slot_count) +
                " size=" + std::to_string(h.width) + "x" + std::to_string(h.height) +
                " frame_bytes=" + std::to_string(h.frame_bytes) + ")");
  }
  if (size < h.total_bytes) {
    return fail("truncated: file is " + std::to_string(size) + " bytes, header says " +
                std::to_string(h.total_bytes));
  }
  // Read-only: a reader bug cannot corrupt the ring for other readers or the writer.
  void* mem = mmap(nullptr, h.total_bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return fail(std::string("mmap: ") + strerror(errno));
  close(fd);

  auto impl = new Impl;
  impl->path = path;
  impl->base = static_cast<const uint8_t*>(mem);
  impl->total_bytes = h.total_bytes;
  impl->header = static_cast<const RingHeader*>(mem);
  impl->slot_count = h.slot_count;
  impl->width = h.width;
  impl->height = h.height;
  impl->camera_index = h.camera_index;
  impl->frame_bytes = h.frame_bytes;
  impl->slot_stride = h.slot_stride;
  impl->dev = st.st_dev;
  impl->ino = st.st_ino;
  const uint64_t w = impl->WriteSeq();
  impl->cursor = w > 0 ? w - 1 : 0;  // attach at the newest committed frame (see header)
  FrameRingReader reader;
  reader.impl_ = impl;
  return reader;
}

FrameRingReader::FrameRingReader(FrameRingReader&& o) noexcept
    : impl_(std::exchange(o.impl_, nullptr)) {}

FrameRingReader& FrameRingReader::operator=(FrameRingReader&& o) noexcept {
  if (this != &o) {
    delete impl_;
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}

FrameRingReader::~FrameRingReader() { delete impl_; }

bool FrameRingReader::ReadLatest(uint8_t* dst, FrameMeta* meta, uint64_t* skipped) {
  CHECK(impl_ != nullptr) << "ReadLatest on a moved-from FrameRingReader";
  for (;;) {
    const uint64_t w = impl_->WriteSeq();  // R1
    if (w <= impl_->cursor) return false;
    const uint64_t target = w - 1;
    // Fails only if the writer lapped the whole ring while we copied; then simply try the new
    // newest frame (slot_count >= 2 keeps the newest frame out of the writer's next slot).
    if (!impl_->TryCopy(target, dst, meta)) continue;
    if (skipped != nullptr) *skipped = target - impl_->cursor;
    impl_->cursor = target + 1;
    return true;
  }
}

bool FrameRingReader::ReadNext(uint8_t* dst, FrameMeta* meta, uint64_t* dropped) {
  CHECK(impl_ != nullptr) << "ReadNext on a moved-from FrameRingReader";
  const uint64_t n = impl_->slot_count;
  uint64_t target = impl_->cursor;
  for (;;) {
    const uint64_t w = impl_->WriteSeq();  // R1
    if (target >= w) return false;         // only on the first pass: see below
    // Frames older than w - n have certainly been overwritten.
    if (w > n && target < w - n) target = w - n;
    if (impl_->TryCopy(target, dst, meta)) break;
    // Frame `target` was overwritten before or during the copy. The writer had then begun
    // frame target + n, so it had committed everything below it: target + 1 < new w.
    ++target;
  }
  if (dropped != nullptr) *dropped = target - impl_->cursor;
  impl_->cursor = target + 1;
  return true;
}

uint64_t FrameRingReader::write_seq() const { return impl_ ? impl_->WriteSeq() : 0; }

bool FrameRingReader::Replaced() const {
  if (impl_ == nullptr) return true;
  struct stat st {};
  if (stat(impl_->path.c_str(), &st) != 0) return true;
  return st.st_dev != impl_->dev || st.st_ino != impl_->ino;
}

size_t FrameRingReader::frame_bytes() const { return impl_ ? impl_->frame_bytes : 0; }
uint32_t FrameRingReader::width() const { return impl_ ? impl_->width : 0; }
uint32_t FrameRingReader::height() const { return impl_ ? impl_->height : 0; }
uint32_t FrameRingReader::camera_index() const { return impl_ ? impl_->camera_index : 0; }
uint32_t FrameRingReader::slot_count() const { return impl_ ? impl_->slot_count : 0; }

}  // namespace fs
