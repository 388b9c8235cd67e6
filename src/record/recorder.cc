#include "src/record/recorder.h"

#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <tuple>

#include "src/base/clock.h"

namespace fs::profile {
namespace {

// Alive and not a zombie (a child we have not reaped yet is a zombie once it exits).
bool Alive(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[512];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* paren = strrchr(buf, ')');
  return paren != nullptr && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

constexpr const char* kTruncated = "[truncated stack]";

// User-space code lives below the x86_64 canonical hole and above the null page.
bool PlausibleReturnAddress(uint64_t address) {
  return address >= 4096 && address < 0x0000800000000000ULL;
}

// How long `ips[0, n)` stays once a repeating tail is cut after its first period. A frame-pointer
// chain that loops (frameless code left a stack address in the frame-pointer register) repeats
// the same frames until the kernel's depth limit (perf_event_max_stack) ends it. Recursion
// repeats too, but below the repeats come its callers (main, the thread's start): only a tail
// repeating to the very end is cut. A recursion deeper than the walk is cut the same way: its
// callers were lost already.
size_t WithoutCyclicTail(const std::vector<uint64_t>& ips, size_t n) {
  constexpr size_t kMaxPeriod = 16;  // Frames in one loop.
  constexpr size_t kMinRepeats = 4;  // Loops before the end, so short coincidences stay.
  for (size_t period = 1; period <= kMaxPeriod && period * kMinRepeats <= n; ++period) {
    size_t start = n - period;  // The tail ips[start, n) has ips[i] == ips[i + period].
    while (start > 0 && ips[start - 1] == ips[start - 1 + period]) --start;
    if ((n - start) / period >= kMinRepeats) return start + period;
  }
  return n;
}

// How many of a sample's user frames (leaf first) are real. A frame-pointer walk through code
// built without frame pointers reads junk "return addresses": values no code can have (0, small
// numbers, kernel addresses), addresses in data (the heap, anonymous memory: not in an executable
// mapping of the process, so never a return address while no JIT runs there), or a loop. The
// leaf is the sampled pc itself and always kept.
size_t RealUserFrames(const std::vector<uint64_t>& ips, Symbolizer* symbolizer) {
  size_t n = ips.size();
  for (size_t i = 1; i < n; ++i) {
    // The call is at address - 1: a call ending its mapping returns just past it.
    if (!PlausibleReturnAddress(ips[i]) ||
        (symbolizer != nullptr && !symbolizer->IsExecutable(ips[i] - 1))) {
      n = i;
      break;
    }
  }
  return WithoutCyclicTail(ips, n);
}

// Interns mappings per (pid, module start) and locations per (pid, pc), where pc is a leaf's
// address and a return address - 1. A return address is the instruction after a call, which may
// begin the next line or function; the call itself is at address - 1, inside the call
// instruction, where no sampled pc can be. So callers are looked up and interned there (perf's
// DWARF unwinder steps back the same byte): a leaf and a caller at one address are two
// locations, each with its own function, in whichever order they come.
class StackInterner {
 public:
  StackInterner(ProfileBuilder* b, const std::map<pid_t, Symbolizer*>& symbolizers)
      : b_(b), symbolizers_(symbolizers) {}

  // Location ids of `r`'s frames, leaf first: kernel, then user frames up to the first junk one
  // (see RealUserFrames), where one "[truncated stack]" frame ends the stack.
  std::vector<uint64_t> Stack(const RawSample& r) {
    const pid_t pid = static_cast<pid_t>(r.pid);
    Symbolizer* symbolizer = SymbolizerFor(pid);
    std::vector<uint64_t> ids;
    ids.reserve(r.kernel_ips.size() + r.user_ips.size());
    for (size_t i = 0; i < r.kernel_ips.size(); ++i) {
      ids.push_back(Location(symbolizer, pid, r.kernel_ips[i], i > 0));
    }
    const size_t real = RealUserFrames(r.user_ips, symbolizer);
    for (size_t i = 0; i < real; ++i) {
      ids.push_back(Location(symbolizer, pid, r.user_ips[i], i > 0));
    }
    if (real < r.user_ips.size()) ids.push_back(Truncated());
    return ids;
  }

 private:
  Symbolizer* SymbolizerFor(pid_t pid) const {
    auto it = symbolizers_.find(pid);
    return it == symbolizers_.end() ? nullptr : it->second;
  }

  uint64_t Location(Symbolizer* symbolizer, pid_t pid, uint64_t address, bool is_return_address) {
    const uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
    auto key = std::make_pair(pid, pc);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    uint64_t id;
    if (symbolizer == nullptr) {
      id = b_->InternLocation(0, pc);
    } else {
      Symbolized s = symbolizer->Lookup(pc);
      uint64_t mapping = MappingFor(pid, s);
      std::vector<Line> lines;
      for (const Frame& f : s.frames) {
        if (f.function.empty()) continue;
        lines.push_back({b_->InternFunction(f.function, f.file), f.line});
      }
      id = b_->InternLocation(mapping, pc, std::move(lines));
    }
    cache_[key] = id;
    return id;
  }

  uint64_t Truncated() {
    if (truncated_ == 0)
      truncated_ = b_->InternLocation(0, 0, {{b_->InternFunction(kTruncated), 0}});
    return truncated_;
  }

  uint64_t MappingFor(pid_t pid, const Symbolized& s) {
    auto key = std::make_pair(pid, s.module + "@" + std::to_string(s.module_start));
    if (auto it = mappings_.find(key); it != mappings_.end()) {
      Mapping& m = b_->profile().mappings[it->second - 1];
      if (s.resolved()) m.has_functions = true;
      return it->second;
    }
    Mapping m;
    m.start = s.module_start;
    m.limit = s.module_end;
    m.file = s.module;
    m.build_id = s.build_id;
    m.has_functions = s.resolved();
    uint64_t id = b_->AddMapping(m);
    mappings_[key] = id;
    return id;
  }

  ProfileBuilder* b_;
  const std::map<pid_t, Symbolizer*>& symbolizers_;
  std::map<std::pair<pid_t, std::string>, uint64_t> mappings_;
  std::map<std::pair<pid_t, uint64_t>, uint64_t> cache_;  // (pid, pc) -> location id.
  uint64_t truncated_ = 0;  // The "[truncated stack]" location, made on first use.
};

}  // namespace

Profile BuildProfile(const std::vector<RawSample>& samples,
                     const std::map<pid_t, Symbolizer*>& symbolizers,
                     const std::map<uint32_t, std::string>& thread_names,
                     const std::map<pid_t, std::string>& services, int frequency_hz) {
  ProfileBuilder b;
  Profile& p = b.profile();
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = frequency_hz > 0 ? 1000000000LL / frequency_hz : 0;
  p.default_sample_type = "cpu";
  StackInterner interner(&b, symbolizers);
  // Identical stacks of one thread are merged into one pprof sample.
  std::map<std::tuple<uint32_t, uint32_t, std::vector<uint64_t>>, size_t> merged;
  for (const RawSample& r : samples) {
    std::vector<uint64_t> ids = interner.Stack(r);
    pid_t pid = static_cast<pid_t>(r.pid);
    if (ids.empty()) continue;
    int64_t period = r.period > 0 ? static_cast<int64_t>(r.period) : p.period;
    auto key = std::make_tuple(r.pid, r.tid, ids);
    if (auto it = merged.find(key); it != merged.end()) {
      Sample& s = p.samples[it->second];
      s.values[0] += 1;
      s.values[1] += period;
      continue;
    }
    Sample s;
    s.location_ids = std::move(ids);
    s.values = {1, period};
    auto name = thread_names.find(r.tid);
    if (name != thread_names.end() && !name->second.empty()) s.labels["thread"] = name->second;
    if (auto svc = services.find(pid); svc != services.end()) s.labels["service"] = svc->second;
    s.num_labels["tid"] = r.tid;
    s.num_labels["pid"] = r.pid;
    merged[key] = p.samples.size();
    b.AddSample(std::move(s));
  }
  return std::move(b).Build();
}

StatusOr<RecordResult> Record(const RecordOptions& options) {
  if (options.pids.empty()) return Err("no process to record");
  if (options.frequency_hz < 1 || options.frequency_hz > 10000) {
    return Err("frequency must be 1..10000 Hz");
  }
  const bool dwarf = options.unwind == Unwind::kDwarf;
  SamplerOptions so;
  so.pids = options.pids;
  so.frequency_hz = options.frequency_hz;
  so.dwarf = dwarf;
  so.stack_bytes = options.stack_bytes;
  so.system_wide = options.system_wide;
  so.allow_vanished = options.allow_vanished;
  ASSIGN_OR_RETURN(std::unique_ptr<Sampler> sampler, Sampler::Start(so));
  // The recording window starts here: samples flow from now on (also while symbolizers load).
  const int64_t start = MonotonicNs();
  const int64_t wall_start = WallNs();
  if (options.after_attach) options.after_attach();
  // Symbolizers now, while every target is alive: a process that exits mid-record is still
  // symbolized from the modules it had mapped.
  std::map<pid_t, std::unique_ptr<Symbolizer>> owned;
  std::map<pid_t, Symbolizer*> symbolizers;
  for (pid_t pid : options.pids) {
    auto sym = Symbolizer::ForProcess(pid);
    if (!sym.ok()) {
      // Gone already (a short command): its samples stay as raw addresses. Otherwise (e.g.
      // permission denied) the profile would be useless: fail.
      if (!Alive(pid)) continue;
      return sym.status();
    }
    owned[pid] = std::move(*sym);
    symbolizers[pid] = owned[pid].get();
  }

  // One unwinder per target, made while it is alive (like the symbolizers). Without one (the
  // target is gone, or the sample is from a child process of a target) a sample keeps the
  // kernel's frame-pointer callchain.
  std::map<pid_t, std::unique_ptr<Unwinder>> unwinders;
  if (dwarf) {
    for (pid_t pid : options.pids) {
      auto unwinder = Unwinder::ForProcess(pid);
      if (unwinder.ok()) unwinders[pid] = std::move(*unwinder);
    }
  }

  // Processes the targets fork while recording (system-wide mode: postgres backends, helper
  // processes) get their own symbolizer and unwinder when first seen, else their parent's
  // symbolizer (a fork shares its parent's mappings), and their parent's service label.
  std::map<pid_t, std::string> services = options.services;
  std::set<pid_t> tried(options.pids.begin(), options.pids.end());
  auto adopt = [&](pid_t pid) {
    if (!tried.insert(pid).second) return;
    auto sym = Symbolizer::ForProcess(pid);
    if (sym.ok()) {
      owned[pid] = std::move(*sym);
      symbolizers[pid] = owned[pid].get();
    }
    if (dwarf) {
      auto unwinder = Unwinder::ForProcess(pid);
      if (unwinder.ok()) unwinders[pid] = std::move(*unwinder);
    }
  };
  // After recording: children that could not be read borrow from their nearest ancestor.
  auto inherit_from_parents = [&](const std::map<uint32_t, uint32_t>& children) {
    for (const auto& [child, first_parent] : children) {
      pid_t c = static_cast<pid_t>(child);
      for (uint32_t parent = first_parent, hops = 0; hops < 64; ++hops) {
        pid_t p = static_cast<pid_t>(parent);
        if (!symbolizers.count(c) && symbolizers.count(p)) symbolizers[c] = symbolizers[p];
        if (!services.count(c) && services.count(p)) services[c] = services[p];
        auto up = children.find(parent);
        if (up == children.end()) break;
        parent = up->second;
      }
    }
  };

  RecordResult result;
  std::vector<RawSample> raw;
  // After a rate change the kernel keeps reporting cpu-clock's original period in every sample
  // (hw.last_period is set once, at event creation), so samples taken after it carry the new
  // period from here.
  uint64_t period_override_ns = 0;
  uint64_t dwarf_frames = 0;
  int64_t unwind_ns = 0;
  // Moves the sampler's new samples into `raw`; in DWARF mode unwinds them first and frees
  // their stack copies (~stack_bytes each), which is what keeps memory bounded.
  auto take = [&] {
    std::vector<RawSample> fresh = sampler->TakeSamples();
    if (period_override_ns > 0) {
      for (RawSample& s : fresh) s.period = period_override_ns;
    }
    if (sampler->system_wide()) {
      for (const RawSample& s : fresh) adopt(static_cast<pid_t>(s.pid));
    }
    if (dwarf) {
      int64_t t0 = MonotonicNs();
      for (RawSample& s : fresh) {
        auto it = unwinders.find(static_cast<pid_t>(s.pid));
        size_t depth = 0;
        const bool has_regs = s.regs_abi != 0 && !s.user_regs.empty();
        if (it != unwinders.end() && has_regs) {
          depth = it->second->Unwind(&s);
        } else {
          ReleaseDwarfPayload(&s);
        }
        if (depth >= 2) {
          result.dwarf_unwound++;
          dwarf_frames += depth;
        } else {
          result.dwarf_failed++;
        }
      }
      unwind_ns += MonotonicNs() - t0;
    }
    raw.reserve(raw.size() + fresh.size());
    for (RawSample& s : fresh) raw.push_back(std::move(s));
  };
  int64_t last_progress = start;
  size_t polled = 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    polled += sampler->Poll();
    take();
    double elapsed = static_cast<double>(MonotonicNs() - start) / 1e9;
    if (MonotonicNs() - last_progress >= 1000000000) {
      // Per-thread mode cannot change the rate of inherited events: no governor there.
      if (options.adjust_frequency && sampler->system_wide()) {
        int want = options.adjust_frequency(elapsed, sampler->frequency_hz());
        if (want > 0 && want != sampler->frequency_hz()) {
          // Samples of the old rate still in the rings keep their period.
          polled += sampler->Poll();
          take();
          if (Status st = sampler->SetFrequency(want); st.ok()) {
            period_override_ns = 1000000000ULL / static_cast<uint64_t>(want);
          } else {
            result.warnings.push_back(st.message());
          }
        }
      }
      if (options.progress) options.progress(elapsed, polled);
      last_progress = MonotonicNs();
    }
    if (options.stop != nullptr && options.stop->load()) break;
    if (options.duration_s > 0 && elapsed >= options.duration_s) break;
    bool any_alive = false;
    for (pid_t pid : options.pids) any_alive |= Alive(pid);
    if (!any_alive) break;
  }
  sampler->Stop();
  if (options.after_stop) options.after_stop();
  result.elapsed_s = static_cast<double>(MonotonicNs() - start) / 1e9;
  for (pid_t pid : options.pids) {
    if (!Alive(pid)) result.exited.push_back(pid);
  }
  take();
  result.samples = raw.size();
  result.unwind_s = static_cast<double>(unwind_ns) / 1e9;
  if (result.dwarf_unwound > 0) {
    result.dwarf_avg_depth =
        static_cast<double>(dwarf_frames) / static_cast<double>(result.dwarf_unwound);
  }
  result.lost = sampler->lost();
  result.kernel_frames = sampler->kernel_frames();
  result.system_wide = sampler->system_wide();
  result.filtered = sampler->filtered();
  result.final_frequency_hz = sampler->frequency_hz();
  const std::map<uint32_t, uint32_t> children = sampler->ChildProcesses();
  result.child_processes = children.size();
  inherit_from_parents(children);
  int64_t sym_start = MonotonicNs();
  result.profile =
      BuildProfile(raw, symbolizers, sampler->ThreadNames(), services, options.frequency_hz);
  result.symbolize_s = static_cast<double>(MonotonicNs() - sym_start) / 1e9;
  result.profile.time_nanos = wall_start;
  result.profile.duration_nanos = static_cast<int64_t>(result.elapsed_s * 1e9);
  const std::string unwinding =
      dwarf ? "DWARF unwinding (" + std::to_string(options.stack_bytes) + "-byte stack copies)"
            : "frame-pointer callchains";
  std::string rate = std::to_string(options.frequency_hz) + " Hz";
  if (result.final_frequency_hz != options.frequency_hz) {
    rate += " (lowered to " + std::to_string(result.final_frequency_hz) + " Hz while recording)";
  }
  result.profile.comments.push_back(
      "framescope record: cpu-clock at " + rate + ", " +
      (result.system_wide ? "system-wide per-CPU events" : "per-thread events") + ", " + unwinding +
      (result.kernel_frames ? "" : ", no kernel frames (refused)"));
  return result;
}

}  // namespace fs::profile
