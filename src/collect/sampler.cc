#include "src/collect/sampler.h"

#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

#include "src/base/clock.h"
#include "src/base/file_util.h"

namespace fs::profile {
namespace {

// The record layout DrainRing parses is fixed by this sample_type (perf_event_open(2), "sample
// records": fields appear in bit order). DWARF mode adds PERF_SAMPLE_REGS_USER and
// PERF_SAMPLE_STACK_USER, which append {abi, regs[popcount(mask)] if abi != 0} and
// {size, data[size], dyn_size if size != 0} after the callchain; ParseSample reads them last.
constexpr uint64_t kSampleType =
    PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN;

// Bounds-checked little reader over one record copied out of the ring. memcpy keeps UBSan quiet
// about alignment (the copy buffer is a byte vector).
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  template <typename T>
  bool Read(T* out) {
    if (n_ - off_ < sizeof(T)) return false;
    std::memcpy(out, p_ + off_, sizeof(T));
    off_ += sizeof(T);
    return true;
  }
  bool Skip(size_t n) {
    if (n_ - off_ < n) return false;
    off_ += n;
    return true;
  }
  size_t remaining() const { return n_ - off_; }
  const uint8_t* here() const { return p_ + off_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
};

bool ParseSample(const uint8_t* rec, size_t size, uint64_t regs_user_mask, RawSample* out) {
  Cursor c(rec + sizeof(perf_event_header), size - sizeof(perf_event_header));
  uint64_t nr = 0;
  if (!c.Read(&out->pid) || !c.Read(&out->tid) || !c.Read(&out->time_ns) || !c.Read(&out->period) ||
      !c.Read(&nr)) {
    return false;
  }
  if (nr > c.remaining() / sizeof(uint64_t)) return false;
  // Context markers (>= PERF_CONTEXT_MAX) say which space the following frames belong to. The
  // kernel emits PERF_CONTEXT_KERNEL before kernel frames and PERF_CONTEXT_USER before user
  // frames (whose first entry is the interrupted user IP); hypervisor/guest frames are dropped.
  enum { kNone, kKernel, kUser, kOther } ctx = kNone;
  for (uint64_t i = 0; i < nr; ++i) {
    uint64_t ip = 0;
    c.Read(&ip);
    if (ip >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      if (ip == static_cast<uint64_t>(PERF_CONTEXT_KERNEL)) {
        ctx = kKernel;
      } else if (ip == static_cast<uint64_t>(PERF_CONTEXT_USER)) {
        ctx = kUser;
      } else {
        ctx = kOther;
      }
      continue;
    }
    if (ctx == kKernel) out->kernel_ips.push_back(ip);
    if (ctx == kUser) out->user_ips.push_back(ip);
  }
  if (regs_user_mask == 0) return true;
  // REGS_USER: registers follow only for a user context (abi != NONE).
  if (!c.Read(&out->regs_abi)) return false;
  if (out->regs_abi != PERF_SAMPLE_REGS_ABI_NONE) {
    const size_t nregs = static_cast<size_t>(__builtin_popcountll(regs_user_mask));
    if (nregs > c.remaining() / sizeof(uint64_t)) return false;
    out->user_regs.resize(nregs);
    for (uint64_t& r : out->user_regs) c.Read(&r);
  }
  // STACK_USER: size 0 (no user context, or no room left in the record) has no data and no
  // dyn_size; otherwise `size` bytes (padded copy) then the bytes the kernel really copied.
  uint64_t stack_size = 0;
  if (!c.Read(&stack_size)) return false;
  if (stack_size == 0) return true;
  if (stack_size > c.remaining()) return false;
  const uint8_t* stack = c.here();
  uint64_t dyn_size = 0;
  if (!c.Skip(static_cast<size_t>(stack_size)) || !c.Read(&dyn_size) || dyn_size > stack_size) {
    return false;
  }
  out->user_stack.assign(stack, stack + dyn_size);
  return true;
}

// sample_id_all's trailer on non-sample records: the sample_type fields among TID, TIME, ID,
// STREAM_ID, CPU, IDENTIFIER, in that order; with kSampleType that is {u32 pid, u32 tid, u64
// time}, so the time is the record's last 8 bytes.
constexpr size_t kSampleIdBytes = 16;

// Parses the body of a COMM / FORK / EXIT record (after the header); false if too short.
bool ParseTaskRecord(const perf_event_header& hdr, const uint8_t* rec, RingEvent* ev) {
  if (hdr.size < sizeof(hdr) + kSampleIdBytes) return false;
  std::memcpy(&ev->time_ns, rec + hdr.size - sizeof(uint64_t), sizeof(uint64_t));
  Cursor body(rec + sizeof(hdr), hdr.size - sizeof(hdr) - kSampleIdBytes);
  if (hdr.type == PERF_RECORD_COMM) {
    if (!body.Read(&ev->pid) || !body.Read(&ev->tid) || body.remaining() == 0) return false;
    const char* p = reinterpret_cast<const char*>(body.here());
    ev->comm.assign(p, strnlen(p, body.remaining()));
    return true;
  }
  return body.Read(&ev->pid) && body.Read(&ev->ppid) && body.Read(&ev->tid) && body.Read(&ev->ptid);
}

// Copies `n` bytes starting at ring offset `pos` (mod size), handling the wrap at the end.
void CopyFromRing(const uint8_t* data, uint64_t size, uint64_t pos, size_t n, uint8_t* out) {
  uint64_t off = pos & (size - 1);
  size_t first = static_cast<size_t>(std::min<uint64_t>(n, size - off));
  std::memcpy(out, data + off, first);
  if (first < n) std::memcpy(out + first, data, n - first);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

std::string PidPath(pid_t pid) { return "/proc/" + std::to_string(pid); }

// Threads of `pid` from /proc/<pid>/task; empty when the process is gone.
std::vector<pid_t> ListTids(pid_t pid) {
  std::vector<pid_t> tids;
  DIR* dir = opendir((PidPath(pid) + "/task").c_str());
  if (dir == nullptr) return tids;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && v > 0) tids.push_back(static_cast<pid_t>(v));
  }
  closedir(dir);
  return tids;
}

// Online CPUs from /sys/devices/system/cpu/online ("0-3,5,7-8"); falls back to 0..n-1.
std::vector<int> OnlineCpus() {
  std::vector<int> cpus;
  auto text = ReadFile("/sys/devices/system/cpu/online");
  if (text.ok()) {
    std::string s = Trim(*text);
    size_t pos = 0;
    while (pos < s.size()) {
      size_t comma = s.find(',', pos);
      std::string part =
          s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      int lo = 0, hi = 0;
      if (std::sscanf(part.c_str(), "%d-%d", &lo, &hi) == 2) {
        for (int c = lo; c <= hi; ++c) cpus.push_back(c);
      } else if (std::sscanf(part.c_str(), "%d", &lo) == 1) {
        cpus.push_back(lo);
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  if (cpus.empty()) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (int c = 0; c < (n > 0 ? n : 1); ++c) cpus.push_back(c);
  }
  return cpus;
}

std::string ParanoidLevel() {
  auto s = ReadFile("/proc/sys/kernel/perf_event_paranoid");
  return s.ok() ? Trim(*s) : "unknown";
}

Status PermissionError(int err, pid_t pid, pid_t tid) {
  return Err("perf_event_open(cpu-clock) on pid " + std::to_string(pid) + " (thread " +
             std::to_string(tid) + "): " + std::strerror(err) +
             (err == EACCES ? " (EACCES)" : " (EPERM)") +
             ". Fix: run as root, or grant CAP_PERFMON (Linux >= 5.8; add CAP_SYS_PTRACE to "
             "profile another user's processes), or lower the sysctl: `sysctl -w "
             "kernel.perf_event_paranoid=1` (currently " +
             ParanoidLevel() +
             "; <= 2 allows user-space profiling of your own processes, <= 1 "
             "adds kernel frames, -1 allows everything)");
}

}  // namespace

void AddTarget(RingSink* sink, uint32_t pid) {
  const uint32_t id = static_cast<uint32_t>(sink->images.size()) + 1;
  sink->images[id] = {.pid = pid};
  sink->image_of_pid[pid] = id;
  if (sink->filter_pids) sink->pids.insert(pid);
}

size_t DrainRing(void* meta, const uint8_t* data, uint64_t data_size, RingSink* sink,
                 uint64_t regs_user_mask) {
  auto* page = static_cast<perf_event_mmap_page*>(meta);
  // Acquire pairs with the kernel's store of data_head after writing the records (smp_wmb in
  // perf_output_put_handle); we are the only writer of data_tail.
  uint64_t head = __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = page->data_tail;
  size_t parsed = 0;
  if (head - tail > data_size) {  // Impossible for a sane ring: nothing in it can be trusted.
    sink->stats.malformed++;
    sink->stats.discarded_bytes += head - tail;
    tail = head;
  }
  std::vector<uint8_t> rec;
  while (head - tail >= sizeof(perf_event_header)) {
    perf_event_header hdr;
    CopyFromRing(data, data_size, tail, sizeof(hdr), reinterpret_cast<uint8_t*>(&hdr));
    if (hdr.size < sizeof(hdr) || hdr.size > data_size) {
      // Size 0 would loop forever, a larger one points past the ring: no way to find the next
      // record, so the rest of this drain is dropped (and counted).
      sink->stats.malformed++;
      sink->stats.discarded_bytes += head - tail;
      tail = head;
      break;
    }
    if (hdr.size > head - tail) break;  // Not fully published yet: the next drain reads it.
    rec.resize(hdr.size);
    CopyFromRing(data, data_size, tail, hdr.size, rec.data());
    tail += hdr.size;
    RingEvent ev;
    ev.type = hdr.type;
    ev.misc = hdr.misc;
    bool ok = true;
    switch (hdr.type) {
      case PERF_RECORD_SAMPLE:
        ok = ParseSample(rec.data(), hdr.size, regs_user_mask, &ev.sample);
        ev.time_ns = ev.sample.time_ns;
        break;
      case PERF_RECORD_LOST: {
        Cursor body(rec.data() + sizeof(hdr), hdr.size - sizeof(hdr));
        uint64_t id = 0, lost = 0;
        ok = body.Read(&id) && body.Read(&lost);
        if (ok) sink->stats.lost += lost;
        continue;
      }
      case PERF_RECORD_COMM:
      case PERF_RECORD_FORK:
      case PERF_RECORD_EXIT:
        ok = ParseTaskRecord(hdr, rec.data(), &ev);
        // Known at once (not in time order): Start() uses it to skip threads that inherit.
        // Per-thread mode only: system-wide mode sees every fork on the host, and the set
        // would grow for as long as it records.
        if (ok && hdr.type == PERF_RECORD_FORK && !sink->filter_pids) {
          sink->forked_tids.insert(ev.tid);
        }
        break;
      default:  // THROTTLE, UNTHROTTLE, ...: nothing to keep.
        continue;
    }
    if (!ok) {
      sink->stats.malformed++;
      continue;
    }
    sink->pending.push_back(std::move(ev));
    parsed++;
  }
  // Release: our reads of the records happen before the kernel may overwrite them.
  __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
  return parsed;
}

namespace {

uint32_t NewImage(RingSink* sink, uint32_t pid, uint32_t parent, bool exec, uint64_t time_ns) {
  const uint32_t id = static_cast<uint32_t>(sink->images.size()) + 1;
  sink->images[id] = {.pid = pid, .parent = parent, .exec = exec, .time_ns = time_ns};
  sink->image_of_pid[pid] = id;
  return id;
}

uint32_t ImageOf(RingSink* sink, uint32_t pid) {
  auto it = sink->image_of_pid.find(pid);
  return it != sink->image_of_pid.end() ? it->second : NewImage(sink, pid, 0, false, 0);
}

bool Tracked(const RingSink& sink, uint32_t pid) {
  return !sink.filter_pids || sink.pids.count(pid) > 0;
}

// Returns whether the sample was kept.
bool ApplySample(RingSink* sink, RawSample* s) {
  if (!Tracked(*sink, s->pid)) {
    sink->filtered++;
    return false;
  }
  if (auto it = sink->comms.find(s->tid); it != sink->comms.end()) s->thread_name = it->second;
  s->image = ImageOf(sink, s->pid);
  if (sink->all_events_own || sink->own_event_tids.count(s->tid)) {
    for (const RingSink::PeriodChange& c : sink->period_changes) {
      if (s->time_ns >= c.time_ns) s->period = c.period_ns;
    }
  }
  sink->samples.push_back(std::move(*s));
  sink->stats.samples++;
  return true;
}

void ApplyTaskRecord(RingSink* sink, const RingEvent& ev) {
  switch (ev.type) {
    case PERF_RECORD_COMM:
      if (!Tracked(*sink, ev.pid)) return;
      sink->comms[ev.tid] = ev.comm;
      // The new program's image: samples from here on are symbolized with it.
      if (ev.misc & PERF_RECORD_MISC_COMM_EXEC) NewImage(sink, ev.pid, 0, true, ev.time_ns);
      return;
    case PERF_RECORD_FORK:
      if (!Tracked(*sink, ev.ppid) && !Tracked(*sink, ev.pid)) return;
      if (ev.pid != ev.ppid) {  // A new process (not a thread): it joins its parent's set.
        if (sink->filter_pids) sink->pids.insert(ev.pid);
        sink->children[ev.pid] = ev.ppid;
        NewImage(sink, ev.pid, ImageOf(sink, ev.ppid), false, ev.time_ns);
      }
      // A new thread starts with its creator's name (a reused tid loses its old one); a later
      // COMM record renames it.
      if (auto it = sink->comms.find(ev.ptid); it != sink->comms.end()) {
        sink->comms[ev.tid] = it->second;
      }
      return;
    case PERF_RECORD_EXIT:
      // A process's exit (its main thread, pid == tid) ends it: a later process with the same
      // pid is someone else's unless a target forks it. (If a main thread exits before its
      // other threads, as with pthread_exit in main, their later samples are dropped.)
      if (ev.pid != ev.tid || !Tracked(*sink, ev.pid)) return;
      if (sink->filter_pids) sink->pids.erase(ev.pid);
      sink->image_of_pid.erase(ev.pid);
      return;
    default:
      return;
  }
}

}  // namespace

size_t ApplyRingEvents(RingSink* sink, uint64_t up_to_ns) {
  std::vector<RingEvent>& q = sink->pending;
  // Each ring's records are already in time order; stable keeps a ring's equal stamps in order.
  std::stable_sort(q.begin(), q.end(),
                   [](const RingEvent& a, const RingEvent& b) { return a.time_ns < b.time_ns; });
  size_t n = 0;
  while (n < q.size() && q[n].time_ns <= up_to_ns) ++n;
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (q[i].type == PERF_RECORD_SAMPLE) {
      kept += ApplySample(sink, &q[i].sample);
    } else {
      ApplyTaskRecord(sink, q[i]);
    }
  }
  q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(n));
  return kept;
}

Status Sampler::Configure(const SamplerOptions& options) {
  if (options.pids.empty()) return Err("sampler: no pids to sample");
  if (options.frequency_hz <= 0) return Err("sampler: frequency must be > 0 Hz");
  pages_ = options.ring_pages;
  if (pages_ == 0 || (pages_ & (pages_ - 1)) != 0) {
    return Err("sampler: ring_pages must be a power of two, got " + std::to_string(pages_));
  }
  if (options.dwarf) {
#if !defined(__x86_64__)
    return Err("sampler: DWARF unwinding is only implemented for x86_64; use frame pointers");
#endif
    if (options.stack_bytes < kMinStackBytes || options.stack_bytes > kMaxStackBytes ||
        options.stack_bytes % 8 != 0) {
      return Err("sampler: stack_bytes must be a multiple of 8 in " +
                 std::to_string(kMinStackBytes) + ".." + std::to_string(kMaxStackBytes) + ", got " +
                 std::to_string(options.stack_bytes));
    }
    pages_ = std::max(pages_, kDwarfRingPages);
  }
  options_ = options;
  if (options.allow_vanished) {
    std::vector<pid_t> alive;
    for (pid_t pid : options.pids) {
      if (pid > 0 && !ListTids(pid).empty()) alive.push_back(pid);
    }
    if (alive.empty()) return Err("no such process: every target pid has exited");
    options_.pids = alive;
  }

  std::memset(&attr_, 0, sizeof(attr_));
  attr_.size = sizeof(attr_);
  attr_.type = PERF_TYPE_SOFTWARE;
  attr_.config = PERF_COUNT_SW_CPU_CLOCK;  // Works without hardware PMU access (VMs).
  attr_.freq = 1;
  attr_.sample_freq = static_cast<uint64_t>(options.frequency_hz);
  attr_.sample_type = kSampleType;
  attr_.sample_id_all = 1;  // Time-stamps COMM/FORK/EXIT too: they are ordered with samples.
  attr_.use_clockid = 1;    // ... on the clock Poll() compares them with.
  attr_.clockid = CLOCK_MONOTONIC;
  if (options.dwarf) {
    // The kernel copies min(stack_bytes, room left in the u16-sized record, bytes up to the
    // top of the stack vma) from the user SP; its own user frame-pointer walk would be wasted.
    attr_.sample_type |= PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
    attr_.sample_regs_user = kUserRegsMask;
    attr_.sample_stack_user = options.stack_bytes;
    attr_.exclude_callchain_user = 1;
  }
  attr_.inherit = 1;  // Follow threads/processes created after Start().
  attr_.comm = 1;
  attr_.task = 1;
  attr_.exclude_hv = 1;
  attr_.exclude_kernel = options.kernel ? 0 : 1;
  kernel_frames_ = options.kernel;
  cpus_ = OnlineCpus();
  start_hz_ = frequency_hz_ = options.frequency_hz;
  return Status::Ok();
}

int Sampler::OpenEvent(pid_t tid, size_t cpu_index) {
  for (;;) {
    int fd = static_cast<int>(
        syscall(SYS_perf_event_open, &attr_, tid, cpus_[cpu_index], -1, PERF_FLAG_FD_CLOEXEC));
    if (fd >= 0) return fd;
    const int err = errno;
    if ((err != EACCES && err != EPERM) || attr_.exclude_kernel) return -err;
    // paranoid >= 2 refuses kernel samples to unprivileged users: retry user-only.
    attr_.exclude_kernel = 1;
    kernel_frames_ = false;
  }
}

Status Sampler::AttachToRing(int fd, size_t cpu_index, pid_t pid) {
  if (cpu_index < rings_.size()) {
    if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, rings_[cpu_index].fd) != 0) {
      return Err("PERF_EVENT_IOC_SET_OUTPUT on cpu " + std::to_string(cpus_[cpu_index]) + ": " +
                 std::strerror(errno));
    }
    return Status::Ok();
  }
  const size_t page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  Ring ring;
  ring.cpu = cpus_[cpu_index];
  ring.fd = fd;
  for (;;) {
    ring.length = (pages_ + 1) * page_size;
    ring.base = mmap(nullptr, ring.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    // Unprivileged users may lock only perf_event_mlock_kb (516 KiB) per CPU: DWARF's larger
    // rings shrink (still a power of two) down to what was asked for before giving up. The
    // first ring settles pages_ for the others.
    if (ring.base != MAP_FAILED || errno != EPERM || !options_.dwarf ||
        pages_ <= options_.ring_pages) {
      break;
    }
    pages_ /= 2;
  }
  if (ring.base == MAP_FAILED) {
    const int err = errno;
    return Err("mmap of the perf ring (" + std::to_string(ring.length) + " bytes) for pid " +
               std::to_string(pid) + " cpu " + std::to_string(ring.cpu) + ": " +
               std::strerror(err) +
               (err == EPERM ? ". Fix: run as root, raise sysctl kernel.perf_event_mlock_kb, "
                               "or use fewer ring_pages"
                             : ""));
  }
  rings_.push_back(ring);
  return Status::Ok();
}

void Sampler::CloseAll() {
  for (Ring& ring : rings_) {
    if (ring.base != nullptr) munmap(ring.base, ring.length);
  }
  for (int fd : fds_) close(fd);
  rings_.clear();
  fds_.clear();
}

void Sampler::ReadNamesFromProc(pid_t pid) {
  for (pid_t tid : ListTids(pid)) {
    auto comm = ReadFile(PidPath(pid) + "/task/" + std::to_string(tid) + "/comm");
    if (comm.ok()) sink_.comms[static_cast<uint32_t>(tid)] = Trim(*comm);
  }
}

// Per-CPU events for every task: no inherit (it needs a task); FORK records tell which new
// processes belong to the targets. False when refused (unprivileged): nothing is left open.
bool Sampler::StartSystemWide() {
  const perf_event_attr per_thread = attr_;
  attr_.inherit = 0;
  for (size_t i = 0; i < cpus_.size(); ++i) {
    const int fd = OpenEvent(-1, i);
    if (fd >= 0) fds_.push_back(fd);
    if (fd < 0 || !AttachToRing(fd, i, -1).ok()) {
      CloseAll();
      attr_ = per_thread;
      kernel_frames_ = options_.kernel;
      return false;
    }
  }
  system_wide_ = true;
  sink_.filter_pids = true;
  for (pid_t pid : options_.pids) {
    AddTarget(&sink_, static_cast<uint32_t>(pid));
    ReadNamesFromProc(pid);
  }
  return true;
}

// Opens one event per CPU on `tid`. Sets *vanished when the thread is gone.
Status Sampler::OpenThread(pid_t pid, pid_t tid, bool* vanished) {
  *vanished = false;
  for (size_t i = 0; i < cpus_.size(); ++i) {
    if (fds_.size() >= kMaxEvents) {
      return Err("sampler: targets need more than " + std::to_string(kMaxEvents) +
                 " perf fds (threads x CPUs); sample fewer processes");
    }
    const int fd = OpenEvent(tid, i);
    if (fd == -ESRCH) {
      *vanished = true;
      return Status::Ok();
    }
    if (fd == -EACCES || fd == -EPERM) return PermissionError(-fd, pid, tid);
    if (fd < 0) {
      return Err("perf_event_open(cpu-clock) on pid " + std::to_string(pid) + " thread " +
                 std::to_string(tid) + " cpu " + std::to_string(cpus_[i]) + ": " +
                 std::strerror(-fd));
    }
    fds_.push_back(fd);
    RETURN_IF_ERROR(AttachToRing(fd, i, pid));
  }
  sink_.own_event_tids.insert(static_cast<uint32_t>(tid));
  return Status::Ok();
}

Status Sampler::StartPerThread() {
  sink_.all_events_own = false;
  for (pid_t pid : options_.pids) {
    std::vector<pid_t> tids = ListTids(pid);
    if (options_.allow_vanished && tids.empty()) continue;
    if (pid <= 0 || tids.empty()) {
      return Err("no such process: pid " + std::to_string(pid) + " (" + PidPath(pid) +
                 "/task is missing; did it exit?)");
    }
    AddTarget(&sink_, static_cast<uint32_t>(pid));
    ReadNamesFromProc(pid);
    size_t alive = 0;
    for (pid_t tid : tids) {
      bool vanished = false;
      RETURN_IF_ERROR(OpenThread(pid, tid, &vanished));
      alive += !vanished;
    }
    if (alive == 0 && !options_.allow_vanished) {
      return Err("no such process: pid " + std::to_string(pid) + " (exited)");
    }
  }
  // A thread created between listing /proc and opening its creator's event has no event. Any
  // thread created after is covered by inherit and announced by a FORK record; drain those and
  // open events for the remaining strays (one pass; the window is microseconds).
  Poll();
  for (pid_t pid : options_.pids) {
    for (pid_t tid : ListTids(pid)) {
      const uint32_t t = static_cast<uint32_t>(tid);
      if (sink_.own_event_tids.count(t) || sink_.forked_tids.count(t)) continue;
      bool vanished = false;
      RETURN_IF_ERROR(OpenThread(pid, tid, &vanished));
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Sampler>> Sampler::Start(const SamplerOptions& options) {
  std::unique_ptr<Sampler> s(new Sampler());
  RETURN_IF_ERROR(s->Configure(options));
  if (options.system_wide) {
    for (pid_t pid : s->options_.pids) {
      if (!options.allow_vanished && (pid <= 0 || ListTids(pid).empty())) {
        return Err("no such process: pid " + std::to_string(pid) + " (" + PidPath(pid) +
                   "/task is missing; did it exit?)");
      }
    }
    if (s->StartSystemWide()) return s;
  }
  RETURN_IF_ERROR(s->StartPerThread());
  return s;
}

Sampler::~Sampler() { Stop(); }

void Sampler::DrainAll() {
  for (const Ring& ring : rings_) {
    auto* page = static_cast<perf_event_mmap_page*>(ring.base);
    uint64_t offset = page->data_offset;  // Kernels before 4.1 leave these zero.
    uint64_t size = page->data_size;
    if (offset == 0 || size == 0) {
      offset = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
      size = ring.length - offset;
    }
    DrainRing(ring.base, static_cast<const uint8_t*>(ring.base) + offset, size, &sink_,
              options_.dwarf ? kUserRegsMask : 0);
  }
}

size_t Sampler::Poll() {
  // The horizon is read before any ring: a record stamped before it is in its ring by then.
  const uint64_t now = static_cast<uint64_t>(MonotonicNs());
  std::lock_guard<std::mutex> lock(mu_);
  DrainAll();
  return ApplyRingEvents(&sink_, now > kReorderWindowNs ? now - kReorderWindowNs : 0);
}

Status Sampler::AddProcess(pid_t pid) {
  if (!system_wide_) {
    return Err("cannot follow pid " + std::to_string(pid) +
               ": per-thread events (system-wide events were refused) cover only the processes "
               "that existed at the start; run as root or with CAP_PERFMON to follow new ones");
  }
  if (stopped_) return Err("cannot follow pid " + std::to_string(pid) + ": sampling has stopped");
  if (pid <= 0 || ListTids(pid).empty()) return Err("no such process: pid " + std::to_string(pid));
  std::lock_guard<std::mutex> lock(mu_);
  if (sink_.pids.count(static_cast<uint32_t>(pid)) != 0) return Status::Ok();
  AddTarget(&sink_, static_cast<uint32_t>(pid));
  ReadNamesFromProc(pid);
  options_.pids.push_back(pid);  // Its thread names are read again at Stop().
  return Status::Ok();
}

void Sampler::RefreshNamesFromProc() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pid_t> pids = options_.pids;
  for (const auto& [child, parent] : sink_.children) pids.push_back(static_cast<pid_t>(child));
  for (pid_t pid : pids) ReadNamesFromProc(pid);
}

void Sampler::Stop() {
  if (stopped_) return;
  // Disable first (also disables inherited children) so the final drain is complete.
  for (int fd : fds_) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    DrainAll();
    ApplyRingEvents(&sink_, UINT64_MAX);
  }
  RefreshNamesFromProc();
  std::lock_guard<std::mutex> lock(mu_);
  CloseAll();
  stopped_ = true;
}

Status Sampler::SetFrequency(int hz) {
  if (hz <= 0) return Err("sampler: frequency must be > 0 Hz");
  // cpu-clock is hrtimer based: the kernel turns a frequency into a fixed period at creation
  // (perf_swevent_init_hrtimer clears attr.freq), so IOC_PERIOD takes nanoseconds here. It
  // keeps hw.last_period, which samples report, at the first period: ApplySample corrects it.
  uint64_t period_ns = 1000000000ULL / static_cast<uint64_t>(hz);
  for (int fd : fds_) {
    if (ioctl(fd, PERF_EVENT_IOC_PERIOD, &period_ns) != 0) {
      return Err("PERF_EVENT_IOC_PERIOD(" + std::to_string(hz) + " Hz): " + std::strerror(errno));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  sink_.period_changes.push_back({static_cast<uint64_t>(MonotonicNs()), period_ns});
  frequency_hz_ = hz;
  return Status::Ok();
}

std::map<uint32_t, uint32_t> Sampler::ChildProcesses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.children;
}

uint64_t Sampler::filtered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.filtered;
}

std::vector<RawSample> Sampler::TakeSamples() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(sink_.samples, {});
}

std::map<uint32_t, std::string> Sampler::ThreadNames() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.comms;
}

uint64_t Sampler::lost() const { return stats().lost; }

uint64_t Sampler::malformed() const { return stats().malformed; }

RingStats Sampler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.stats;
}

std::map<uint32_t, ProcessImage> Sampler::Images() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.images;
}

uint32_t Sampler::CurrentImage(uint32_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sink_.image_of_pid.find(pid);
  return it != sink_.image_of_pid.end() ? it->second : 0;
}

}  // namespace fs::profile
