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

size_t DrainRing(void* meta, const uint8_t* data, uint64_t data_size, RingSink* sink,
                 uint64_t regs_user_mask) {
  auto* page = static_cast<perf_event_mmap_page*>(meta);
  // Acquire pairs with the kernel's store of data_head after writing the records (smp_wmb in
  // perf_output_put_handle); we are the only writer of data_tail.
  uint64_t head = __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = page->data_tail;
  size_t drained = 0;
  if (head - tail > data_size) {  // Impossible for a sane ring: drop everything.
    sink->stats.malformed++;
    tail = head;
  }
  std::vector<uint8_t> rec;
  while (head - tail >= sizeof(perf_event_header)) {
    perf_event_header hdr;
    CopyFromRing(data, data_size, tail, sizeof(hdr), reinterpret_cast<uint8_t*>(&hdr));
    if (hdr.size < sizeof(hdr) || hdr.size > data_size || hdr.size > head - tail) {
      // Size 0 would loop forever, larger sizes would read garbage: abandon this drain.
      sink->stats.malformed++;
      tail = head;
      break;
    }
    rec.resize(hdr.size);
    CopyFromRing(data, data_size, tail, hdr.size, rec.data());
    Cursor body(rec.data() + sizeof(hdr), hdr.size - sizeof(hdr));
    switch (hdr.type) {
      case PERF_RECORD_SAMPLE: {
        RawSample s;
        if (ParseSample(rec.data(), hdr.size, regs_user_mask, &s)) {
          if (sink->filter_pids && sink->pids.count(s.pid) == 0) {
            sink->filtered++;
            break;
          }
          sink->samples.push_back(std::move(s));
          sink->stats.samples++;
          drained++;
        } else {
          sink->stats.malformed++;
        }
        break;
      }
      case PERF_RECORD_LOST: {
        uint64_t id = 0, lost = 0;
        if (body.Read(&id) && body.Read(&lost)) sink->stats.lost += lost;
        break;
      }
      case PERF_RECORD_COMM: {
        uint32_t pid = 0, tid = 0;
        if (body.Read(&pid) && body.Read(&tid)) {
          if (sink->filter_pids && sink->pids.count(pid) == 0) break;
          const char* p = reinterpret_cast<const char*>(body.here());
          sink->comms[tid] = std::string(p, strnlen(p, body.remaining()));
        }
        break;
      }
      case PERF_RECORD_FORK: {
        uint32_t pid = 0, ppid = 0, tid = 0, ptid = 0;
        if (body.Read(&pid) && body.Read(&ppid) && body.Read(&tid) && body.Read(&ptid)) {
          if (sink->filter_pids) {
            if (sink->pids.count(ppid) == 0 && sink->pids.count(pid) == 0) break;
            if (pid != ppid && sink->pids.insert(pid).second) sink->children[pid] = ppid;
          }
          sink->forked_tids.insert(tid);
          // A new thread starts with its creator's name; a later COMM record renames it.
          auto it = sink->comms.find(ptid);
          if (it != sink->comms.end() && !sink->comms.count(tid)) sink->comms[tid] = it->second;
        }
        break;
      }
      default:  // EXIT, THROTTLE, UNTHROTTLE, ...: nothing to keep.
        break;
    }
    tail += hdr.size;
  }
  // Release: our reads of the records happen before the kernel may overwrite them.
  __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
  return drained;
}

StatusOr<std::unique_ptr<Sampler>> Sampler::Start(const SamplerOptions& options) {
  if (options.pids.empty()) return Err("sampler: no pids to sample");
  if (options.frequency_hz <= 0) return Err("sampler: frequency must be > 0 Hz");
  size_t pages = options.ring_pages;
  if (pages == 0 || (pages & (pages - 1)) != 0) {
    return Err("sampler: ring_pages must be a power of two, got " + std::to_string(pages));
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
    pages = std::max(pages, kDwarfRingPages);
  }
  std::unique_ptr<Sampler> s(new Sampler());
  s->options_ = options;
  const size_t page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));

  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;  // Works without hardware PMU access (VMs).
  attr.freq = 1;
  attr.sample_freq = static_cast<uint64_t>(options.frequency_hz);
  attr.sample_type = kSampleType;
  if (options.dwarf) {
    // The kernel copies min(stack_bytes, room left in the u16-sized record, bytes up to the
    // top of the stack vma) from the user SP; the user callchain stays as a fallback.
    attr.sample_type |= PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
    attr.sample_regs_user = kUserRegsMask;
    attr.sample_stack_user = options.stack_bytes;
  }
  attr.inherit = 1;  // Follow threads/processes created after Start().
  attr.comm = 1;
  attr.task = 1;
  attr.exclude_hv = 1;
  attr.exclude_kernel = options.kernel ? 0 : 1;
  s->kernel_frames_ = options.kernel;

  const std::vector<int> cpus = OnlineCpus();
  // Opens one event per CPU on `tid`. The first event on a CPU owns that CPU's ring (mmap);
  // later ones are redirected into it with SET_OUTPUT. Sets *vanished when the thread is gone.
  auto open_one = [&](pid_t pid, pid_t tid, bool* vanished) -> Status {
    *vanished = false;
    for (size_t i = 0; i < cpus.size(); ++i) {
      if (s->fds_.size() >= kMaxEvents) {
        return Err("sampler: targets need more than " + std::to_string(kMaxEvents) +
                   " perf fds (threads x CPUs); sample fewer processes");
      }
      int fd = static_cast<int>(
          syscall(SYS_perf_event_open, &attr, tid, cpus[i], -1, PERF_FLAG_FD_CLOEXEC));
      if (fd < 0) {
        int err = errno;
        if (err == ESRCH) {
          *vanished = true;
          return Status::Ok();
        }
        if ((err == EACCES || err == EPERM) && !attr.exclude_kernel) {
          // paranoid >= 2 refuses kernel samples to unprivileged users: retry user-only.
          attr.exclude_kernel = 1;
          s->kernel_frames_ = false;
          --i;
          continue;
        }
        if (err == EACCES || err == EPERM) return PermissionError(err, pid, tid);
        return Err("perf_event_open(cpu-clock) on pid " + std::to_string(pid) + " thread " +
                   std::to_string(tid) + " cpu " + std::to_string(cpus[i]) + ": " +
                   std::strerror(err));
      }
      s->fds_.push_back(fd);
      if (i < s->rings_.size()) {
        if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, s->rings_[i].fd) != 0) {
          return Err("PERF_EVENT_IOC_SET_OUTPUT on cpu " + std::to_string(cpus[i]) + ": " +
                     std::strerror(errno));
        }
        continue;
      }
      Ring ring;
      ring.cpu = cpus[i];
      ring.fd = fd;
      ring.length = (pages + 1) * page_size;
      ring.base = mmap(nullptr, ring.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      // Unprivileged users may lock only perf_event_mlock_kb (516 KiB) per CPU: DWARF's larger
      // rings shrink (still a power of two) down to what was asked for before giving up.
      while (ring.base == MAP_FAILED && errno == EPERM && options.dwarf &&
             pages > options.ring_pages) {
        pages /= 2;
        ring.length = (pages + 1) * page_size;
        ring.base = mmap(nullptr, ring.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      }
      if (ring.base == MAP_FAILED) {
        int err = errno;
        return Err("mmap of the perf ring (" + std::to_string(ring.length) + " bytes) for pid " +
                   std::to_string(pid) + " cpu " + std::to_string(cpus[i]) + ": " +
                   std::strerror(err) +
                   (err == EPERM ? ". Fix: run as root, raise sysctl kernel.perf_event_mlock_kb, "
                                   "or use fewer ring_pages"
                                 : ""));
      }
      s->rings_.push_back(ring);
    }
    return Status::Ok();
  };

  s->frequency_hz_ = options.frequency_hz;
  if (options.allow_vanished) {
    std::vector<pid_t> alive;
    for (pid_t pid : options.pids) {
      if (pid > 0 && !ListTids(pid).empty()) alive.push_back(pid);
    }
    if (alive.empty()) return Err("no such process: every target pid has exited");
    s->options_.pids = alive;
  }
  const std::vector<pid_t>& pids = s->options_.pids;
  if (options.system_wide) {
    for (pid_t pid : pids) {
      if (!options.allow_vanished && (pid <= 0 || ListTids(pid).empty())) {
        return Err("no such process: pid " + std::to_string(pid) + " (" + PidPath(pid) +
                   "/task is missing; did it exit?)");
      }
    }
    // Per-CPU events for every task: no inherit (it needs a task), FORK records tell which new
    // processes belong to the targets.
    perf_event_attr wide = attr;
    wide.inherit = 0;
    bool refused = false;
    for (int cpu : cpus) {
      int fd =
          static_cast<int>(syscall(SYS_perf_event_open, &wide, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      if (fd < 0 && (errno == EACCES || errno == EPERM) && !wide.exclude_kernel) {
        wide.exclude_kernel = 1;
        s->kernel_frames_ = false;
        fd = static_cast<int>(
            syscall(SYS_perf_event_open, &wide, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      }
      if (fd < 0) {
        refused = true;
        break;
      }
      s->fds_.push_back(fd);
      Ring ring;
      ring.cpu = cpu;
      ring.fd = fd;
      ring.length = (pages + 1) * page_size;
      ring.base = mmap(nullptr, ring.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (ring.base == MAP_FAILED) {
        ring.base = nullptr;
        refused = true;
        break;
      }
      s->rings_.push_back(ring);
    }
    if (!refused) {
      s->system_wide_ = true;
      s->sink_.filter_pids = true;
      for (pid_t pid : pids) {
        s->sink_.pids.insert(static_cast<uint32_t>(pid));
        for (pid_t tid : ListTids(pid)) {
          auto comm = ReadFile(PidPath(pid) + "/task/" + std::to_string(tid) + "/comm");
          if (comm.ok()) s->sink_.comms[static_cast<uint32_t>(tid)] = Trim(*comm);
        }
      }
      return s;
    }
    // Refused (unprivileged): undo and use per-thread events.
    for (Ring& ring : s->rings_) {
      if (ring.base != nullptr) munmap(ring.base, ring.length);
    }
    for (int fd : s->fds_) close(fd);
    s->rings_.clear();
    s->fds_.clear();
    s->kernel_frames_ = options.kernel;
  }

  std::set<pid_t> opened;
  for (pid_t pid : pids) {
    std::vector<pid_t> tids = ListTids(pid);
    if (options.allow_vanished && tids.empty()) continue;
    if (pid <= 0 || tids.empty()) {
      return Err("no such process: pid " + std::to_string(pid) + " (" + PidPath(pid) +
                 "/task is missing; did it exit?)");
    }
    size_t alive = 0;
    for (pid_t tid : tids) {
      auto comm = ReadFile(PidPath(pid) + "/task/" + std::to_string(tid) + "/comm");
      if (comm.ok()) s->sink_.comms[static_cast<uint32_t>(tid)] = Trim(*comm);
      bool vanished = false;
      RETURN_IF_ERROR(open_one(pid, tid, &vanished));
      if (!vanished) {
        opened.insert(tid);
        alive++;
      }
    }
    if (alive == 0 && !options.allow_vanished) {
      return Err("no such process: pid " + std::to_string(pid) + " (exited)");
    }
  }

  // A thread created between listing /proc and opening its creator's event has no event. Any
  // thread created after is covered by inherit and announced by a FORK record; drain those and
  // open events for the remaining strays (one pass; the window is microseconds).
  s->Poll();
  for (pid_t pid : pids) {
    for (pid_t tid : ListTids(pid)) {
      if (opened.count(tid) || s->sink_.forked_tids.count(static_cast<uint32_t>(tid))) continue;
      bool vanished = false;
      RETURN_IF_ERROR(open_one(pid, tid, &vanished));
      if (!vanished) opened.insert(tid);
    }
  }
  return s;
}

Sampler::~Sampler() { Stop(); }

size_t Sampler::Poll() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const Ring& ring : rings_) {
    if (ring.base == nullptr) continue;
    auto* page = static_cast<perf_event_mmap_page*>(ring.base);
    uint64_t offset = page->data_offset;  // Kernels before 4.1 leave these zero.
    uint64_t size = page->data_size;
    if (offset == 0 || size == 0) {
      offset = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
      size = ring.length - offset;
    }
    n += DrainRing(ring.base, static_cast<const uint8_t*>(ring.base) + offset, size, &sink_,
                   options_.dwarf ? kUserRegsMask : 0);
  }
  return n;
}

void Sampler::RefreshNamesFromProc() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pid_t> pids = options_.pids;
  for (const auto& [child, parent] : sink_.children) pids.push_back(static_cast<pid_t>(child));
  for (pid_t pid : pids) {
    for (pid_t tid : ListTids(pid)) {
      auto comm = ReadFile(PidPath(pid) + "/task/" + std::to_string(tid) + "/comm");
      if (comm.ok()) sink_.comms[static_cast<uint32_t>(tid)] = Trim(*comm);
    }
  }
}

void Sampler::Stop() {
  if (stopped_) return;
  // Disable first (also disables inherited children) so the final drain is complete.
  for (int fd : fds_) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  Poll();
  RefreshNamesFromProc();
  std::lock_guard<std::mutex> lock(mu_);
  for (Ring& ring : rings_) {
    if (ring.base != nullptr) munmap(ring.base, ring.length);
  }
  for (int fd : fds_) close(fd);
  rings_.clear();
  fds_.clear();
  stopped_ = true;
}

Status Sampler::SetFrequency(int hz) {
  if (hz <= 0) return Err("sampler: frequency must be > 0 Hz");
  // cpu-clock is hrtimer based: the kernel turns a frequency into a fixed period at creation
  // (perf_swevent_init_hrtimer clears attr.freq), so IOC_PERIOD takes nanoseconds here.
  uint64_t period_ns = 1000000000ULL / static_cast<uint64_t>(hz);
  for (int fd : fds_) {
    if (ioctl(fd, PERF_EVENT_IOC_PERIOD, &period_ns) != 0) {
      return Err("PERF_EVENT_IOC_PERIOD(" + std::to_string(hz) + " Hz): " + std::strerror(errno));
    }
  }
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

uint64_t Sampler::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.stats.lost;
}

uint64_t Sampler::malformed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sink_.stats.malformed;
}

}  // namespace fs::profile
