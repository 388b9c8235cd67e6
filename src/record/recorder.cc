#include "src/record/recorder.h"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <tuple>

#include "src/base/clock.h"
#include "src/base/logging.h"
#include "src/symbolize/location_interner.h"

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

// User-space code lives below the x86_64 canonical hole and above the null page.
bool PlausibleReturnAddress(uint64_t address) { return PlausibleUserAddress(address); }

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

// Location ids of whole stacks (LocationInterner per frame), junk frames cut off.
class StackInterner {
 public:
  StackInterner(ProfileBuilder* b, const std::map<pid_t, Symbolizer*>& symbolizers)
      : locations_(b), symbolizers_(symbolizers) {}

  // Location ids of `r`'s frames, leaf first: kernel, then user frames up to the first junk one
  // (see RealUserFrames), where one "[truncated stack]" frame ends the stack.
  std::vector<uint64_t> Stack(const RawSample& r) {
    const pid_t pid = static_cast<pid_t>(r.pid);
    Symbolizer* symbolizer = SymbolizerFor(pid);
    std::vector<uint64_t> ids;
    ids.reserve(r.kernel_ips.size() + r.user_ips.size());
    for (size_t i = 0; i < r.kernel_ips.size(); ++i) {
      ids.push_back(locations_.Location(symbolizer, pid, r.kernel_ips[i], i > 0));
    }
    const size_t real = RealUserFrames(r.user_ips, symbolizer);
    for (size_t i = 0; i < real; ++i) {
      ids.push_back(locations_.Location(symbolizer, pid, r.user_ips[i], i > 0));
    }
    if (real < r.user_ips.size()) ids.push_back(locations_.Truncated());
    return ids;
  }

 private:
  Symbolizer* SymbolizerFor(pid_t pid) const {
    auto it = symbolizers_.find(pid);
    return it == symbolizers_.end() ? nullptr : it->second;
  }

  LocationInterner locations_;
  const std::map<pid_t, Symbolizer*>& symbolizers_;
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
  std::map<std::tuple<uint32_t, uint32_t, std::string, std::vector<uint64_t>>, size_t> merged;
  for (const RawSample& r : samples) {
    std::vector<uint64_t> ids = interner.Stack(r);
    pid_t pid = static_cast<pid_t>(r.pid);
    if (ids.empty()) continue;
    int64_t period = r.period > 0 ? static_cast<int64_t>(r.period) : p.period;
    // A thread renamed while recorded gives one sample per name it had when sampled.
    const std::string* thread = &r.thread_name;
    if (thread->empty()) {
      auto name = thread_names.find(r.tid);
      if (name != thread_names.end()) thread = &name->second;
    }
    auto key = std::make_tuple(r.pid, r.tid, *thread, ids);
    if (auto it = merged.find(key); it != merged.end()) {
      Sample& s = p.samples[it->second];
      s.values[0] += 1;
      s.values[1] += period;
      continue;
    }
    Sample s;
    s.location_ids = std::move(ids);
    s.values = {1, period};
    if (!thread->empty()) s.labels["thread"] = *thread;
    if (auto svc = services.find(pid); svc != services.end()) s.labels["service"] = svc->second;
    s.num_labels["tid"] = r.tid;
    s.num_labels["pid"] = r.pid;
    merged[key] = p.samples.size();
    b.AddSample(std::move(s));
  }
  return std::move(b).Build();
}

namespace {

// Symbolizers or unwinders per process image (sampler.h's ProcessImage), made on first use.
template <typename T>
class PerImage {
 public:
  using Factory = StatusOr<std::unique_ptr<T>> (*)(pid_t);
  explicit PerImage(Factory make) : make_(make) {}

  // One made for target `pid` at made_ns (CLOCK_MONOTONIC, the samples' clock, taken before
  // /proc was read): it serves the image the target ran then.
  void AddForTarget(pid_t pid, std::unique_ptr<T> t, uint64_t made_ns) {
    targets_[static_cast<uint32_t>(pid)] = {t.get(), made_ns};
    owned_.push_back(std::move(t));
  }

  // The target's if it was made during this image's life; else, for a fork, its forking
  // parent's (a fork shares its parent's mappings until it execs); else one made now if the
  // image (an exec) is still its process's current one; else its parent's; else none.
  T* Get(uint32_t image, const Sampler& sampler) {
    if (auto it = cache_.find(image); it != cache_.end()) return it->second;
    T* t = Resolve(image, sampler);
    cache_[image] = t;
    return t;
  }

 private:
  struct Made {
    T* t = nullptr;
    uint64_t made_ns = 0;
  };

  T* Resolve(uint32_t image, const Sampler& sampler) {
    const std::map<uint32_t, ProcessImage> images = sampler.Images();  // Only on a cache miss.
    auto it = images.find(image);
    if (it == images.end()) return nullptr;
    const ProcessImage& img = it->second;
    if (auto t = targets_.find(img.pid); t != targets_.end() && Covers(images, image, t->second)) {
      return t->second.t;
    }
    // A fork shares its parent's mappings: its parent's tools serve it (making new ones per
    // child would cost a maps read and module reports each, and keep them open to the end —
    // postgres forks a backend per connection). Only an exec'd image needs its own.
    if (!img.exec && img.parent != 0) return Get(img.parent, sampler);
    if (sampler.CurrentImage(img.pid) == image) {
      if (auto made = make_(static_cast<pid_t>(img.pid)); made.ok()) {
        owned_.push_back(std::move(*made));
        return owned_.back().get();
      }
    }
    return img.parent != 0 ? Get(img.parent, sampler) : nullptr;
  }

  // Whether `made` was taken while `image` was its process's image.
  static bool Covers(const std::map<uint32_t, ProcessImage>& images, uint32_t image,
                     const Made& made) {
    const ProcessImage& img = images.at(image);
    if (img.time_ns > made.made_ns) return false;
    for (auto it = images.upper_bound(image); it != images.end(); ++it) {
      if (it->second.pid == img.pid && it->second.time_ns <= made.made_ns) return false;
    }
    return true;
  }

  Factory make_;
  std::map<uint32_t, Made> targets_;
  std::vector<std::unique_ptr<T>> owned_;
  std::map<uint32_t, T*> cache_;
};

// Appends `src` to `dst`, renumbering its mappings, functions and locations (functions with
// the same name and file are shared).
void MergeInto(Profile* dst, const Profile& src) {
  std::map<uint64_t, uint64_t> mapping_ids, function_ids, location_ids;
  for (Mapping m : src.mappings) {
    const uint64_t old = m.id;
    m.id = dst->mappings.size() + 1;
    mapping_ids[old] = m.id;
    dst->mappings.push_back(std::move(m));
  }
  std::map<std::pair<std::string, std::string>, uint64_t> by_name;
  for (const Function& f : dst->functions) by_name[{f.name, f.filename}] = f.id;
  for (Function f : src.functions) {
    auto [it, added] = by_name.try_emplace({f.name, f.filename}, dst->functions.size() + 1);
    function_ids[f.id] = it->second;
    if (!added) continue;
    f.id = it->second;
    dst->functions.push_back(std::move(f));
  }
  for (Location l : src.locations) {
    const uint64_t old = l.id;
    l.id = dst->locations.size() + 1;
    l.mapping_id = l.mapping_id != 0 ? mapping_ids[l.mapping_id] : 0;
    for (Line& line : l.lines) line.function_id = function_ids[line.function_id];
    location_ids[old] = l.id;
    dst->locations.push_back(std::move(l));
  }
  for (Sample s : src.samples) {
    for (uint64_t& id : s.location_ids) id = location_ids[id];
    dst->samples.push_back(std::move(s));
  }
}

StatusOr<std::unique_ptr<Symbolizer>> MakeSymbolizer(pid_t pid) {
  return Symbolizer::ForProcess(pid);
}

StatusOr<std::unique_ptr<Unwinder>> MakeUnwinder(pid_t pid) { return Unwinder::ForProcess(pid); }

}  // namespace

struct Recording::State {
  RecordOptions options;
  bool dwarf = false;
  std::unique_ptr<Sampler> sampler;
  int64_t start_ns = 0;
  int64_t wall_start_ns = 0;
  int64_t window_start_wall_ns = 0;
  int64_t last_tick_ns = 0;
  PerImage<Symbolizer> symbolizers{&MakeSymbolizer};
  PerImage<Unwinder> unwinders{&MakeUnwinder};
  std::vector<RawSample> window;  // Polled since the last TakeWindow.
  RecordResult result;            // Counters accumulate here from Start on.
  uint64_t dwarf_frames = 0;
  int64_t unwind_ns = 0;
  size_t polled = 0;
  bool warned_inherited_rate = false;
  bool finished = false;
  // pid -> its service label (RecordOptions::services of it or the target that forked it) and
  // the key it counts under in unwind_by_service ("pid N" of that target when unlabelled).
  struct Service {
    std::string label;
    std::string key;
  };
  std::map<uint32_t, Service> service_of;
};

namespace {

using State = Recording::State;

const State::Service& ServiceOf(State& st, uint32_t pid) {
  if (auto it = st.service_of.find(pid); it != st.service_of.end()) return it->second;
  const std::map<uint32_t, uint32_t> children = st.sampler->ChildProcesses();  // On a miss.
  uint32_t root = pid;
  for (int hops = 0; hops < 64; ++hops) {
    if (st.options.services.count(static_cast<pid_t>(root))) break;
    auto up = children.find(root);
    if (up == children.end()) break;
    root = up->second;
  }
  State::Service s;
  if (auto it = st.options.services.find(static_cast<pid_t>(root));
      it != st.options.services.end()) {
    s.label = it->second;
  }
  s.key = s.label.empty() ? "pid " + std::to_string(root) : s.label;
  return st.service_of[pid] = std::move(s);
}

// Whether the user stack got past the leaf with real frames only: the same cut BuildProfile
// makes (RealUserFrames: junk addresses, data, cyclic tails) decides, so the report's shares
// match the stacks drawn. `walked` is how the stack was obtained when it is whole.
UnwindMethod Outcome(const RawSample& s, Symbolizer* symbolizer, UnwindMethod walked) {
  if (s.user_ips.size() < 2) return UnwindMethod::kLeafOnly;
  return RealUserFrames(s.user_ips, symbolizer) == s.user_ips.size() ? walked
                                                                     : UnwindMethod::kLeafOnly;
}

// Unwinds a DWARF sample with its image's unwinder, or by frame pointers when it has none.
UnwindMethod UnwindDwarf(State& st, RawSample* s) {
  UnwindMethod method = UnwindMethod::kLeafOnly;
  const int64_t t0 = MonotonicNs();
  Unwinder* unwinder = st.unwinders.Get(s->image, *st.sampler);
  const size_t depth =
      unwinder != nullptr ? unwinder->Unwind(s, &method) : UnwindByFramePointers(s, &method);
  st.unwind_ns += MonotonicNs() - t0;
  if (method == UnwindMethod::kCfi || method == UnwindMethod::kCfiToRoot) {
    st.result.dwarf_unwound++;
    st.dwarf_frames += depth;
  } else {
    st.result.dwarf_failed++;
  }
  return method;
}

void CountUnwind(State& st, const RawSample& s, UnwindMethod method) {
  UnwindCounts& c = st.result.unwind_by_service[ServiceOf(st, s.pid).key];
  switch (method) {
    case UnwindMethod::kCfiToRoot:
      c.to_root++;
      c.full++;
      break;
    case UnwindMethod::kCfi:
      c.full++;
      break;
    case UnwindMethod::kFramePointer:
      c.fp_fallback++;
      break;
    case UnwindMethod::kLeafOnly:
      c.truncated++;
      break;
  }
}

// Moves the sampler's new samples into the window. Their images' symbolizers are made now,
// while the processes run; in DWARF mode the samples are unwound and their stack copies freed
// (~stack_bytes each), which is what keeps memory bounded.
void TakeNew(State& st) {
  std::vector<RawSample> fresh = st.sampler->TakeSamples();
  st.window.reserve(st.window.size() + fresh.size());
  for (RawSample& s : fresh) {
    Symbolizer* symbolizer = st.symbolizers.Get(s.image, *st.sampler);
    // Frame pointers: a whole kernel chain counts as full (kCfi maps to UnwindCounts::full).
    const UnwindMethod walked = st.dwarf ? UnwindDwarf(st, &s) : UnwindMethod::kCfi;
    const UnwindMethod method = Outcome(s, symbolizer, walked);
    if (!s.user_ips.empty()) {
      CountUnwind(st, s, method);
    } else if (s.kernel_ips.empty()) {
      st.result.samples_without_frames++;
    }
    st.window.push_back(std::move(s));
  }
}

// The overhead governor's hook. Per-thread events: see RecordOptions::adjust_frequency.
void Govern(State& st, double elapsed_s) {
  const int hz = st.sampler->frequency_hz();
  const int want = st.options.adjust_frequency(elapsed_s, hz);
  if (want <= 0 || want == hz) return;
  if (Status s = st.sampler->SetFrequency(want); !s.ok()) {
    st.result.warnings.push_back(s.message());
    return;
  }
  if (st.sampler->inherited_rate_kept() && !st.warned_inherited_rate) {
    st.warned_inherited_rate = true;
    st.result.warnings.push_back(
        "per-thread events: a rate change reaches the threads that existed at the start and "
        "those created after the change; threads created in between keep the rate they "
        "inherited (PERF_EVENT_IOC_PERIOD does not reach inherited events, a kernel limit). "
        "System-wide events (root or CAP_PERFMON) change for every thread");
  }
}

// BuildProfile symbolizes by pid; a process that exec'd needs two symbolizers, so the samples
// are split into groups in which every pid has one, and the groups' profiles are merged.
Profile BuildWindowProfile(State& st, std::vector<RawSample> samples) {
  std::vector<std::map<pid_t, Symbolizer*>> maps;
  std::vector<std::vector<RawSample>> groups;
  std::map<pid_t, std::string> services;
  for (RawSample& s : samples) {
    const pid_t pid = static_cast<pid_t>(s.pid);
    Symbolizer* sym = st.symbolizers.Get(s.image, *st.sampler);
    if (const std::string& label = ServiceOf(st, s.pid).label; !label.empty()) {
      services[pid] = label;
    }
    size_t g = 0;
    while (g < maps.size() && maps[g].count(pid) && maps[g][pid] != sym) ++g;
    if (g == maps.size()) {
      maps.emplace_back();
      groups.emplace_back();
    }
    maps[g][pid] = sym;
    groups[g].push_back(std::move(s));
  }
  const std::map<uint32_t, std::string> names = st.sampler->ThreadNames();
  Profile p = BuildProfile(groups.empty() ? std::vector<RawSample>{} : groups[0],
                           maps.empty() ? std::map<pid_t, Symbolizer*>{} : maps[0], names, services,
                           st.options.frequency_hz);
  for (size_t g = 1; g < groups.size(); ++g) {
    MergeInto(&p, BuildProfile(groups[g], maps[g], names, services, st.options.frequency_hz));
  }
  return p;
}

// The symbolizer (and unwinder) of target `pid` now, while it is alive: a process that exits
// mid-record is still symbolized from the modules it had mapped.
Status MakeTools(State& st, pid_t pid) {
  uint64_t made_ns = static_cast<uint64_t>(MonotonicNs());
  auto sym = Symbolizer::ForProcess(pid);
  // A process in the middle of an exec (a command just started) can fail to read for a
  // moment (seen: ENOEXEC from /proc/PID/maps on a loaded host): retry briefly.
  for (int retry = 0; retry < 10 && !sym.ok() && Alive(pid); ++retry) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    made_ns = static_cast<uint64_t>(MonotonicNs());
    sym = Symbolizer::ForProcess(pid);
  }
  if (!sym.ok()) {
    // Gone already (a short command): its samples stay as raw addresses. Otherwise (e.g.
    // permission denied) the profile would be useless: fail.
    return Alive(pid) ? sym.status() : Status::Ok();
  }
  st.symbolizers.AddForTarget(pid, std::move(*sym), made_ns);
  if (!st.dwarf) return Status::Ok();
  if (auto unwinder = Unwinder::ForProcess(pid); unwinder.ok()) {
    st.unwinders.AddForTarget(pid, std::move(*unwinder), made_ns);
  }
  return Status::Ok();
}

Status MakeTargetTools(State& st) {
  for (pid_t pid : st.options.pids) RETURN_IF_ERROR(MakeTools(st, pid));
  return Status::Ok();
}

}  // namespace

Recording::Recording(std::unique_ptr<State> state) : state_(std::move(state)) {}

Recording::~Recording() = default;

StatusOr<std::unique_ptr<Recording>> Recording::Start(const RecordOptions& options) {
  if (options.pids.empty()) return Err("no process to record");
  if (options.frequency_hz < 1 || options.frequency_hz > 10000) {
    return Err("frequency must be 1..10000 Hz");
  }
  auto st = std::make_unique<State>();
  st->options = options;
  st->dwarf = options.unwind == Unwind::kDwarf;
  SamplerOptions so;
  so.pids = options.pids;
  so.frequency_hz = options.frequency_hz;
  so.dwarf = st->dwarf;
  so.stack_bytes = options.stack_bytes;
  so.system_wide = options.system_wide;
  so.allow_vanished = options.allow_vanished;
  ASSIGN_OR_RETURN(st->sampler, Sampler::Start(so));
  // The recording window starts here: samples flow from now on (also while symbolizers load).
  st->start_ns = st->last_tick_ns = MonotonicNs();
  st->wall_start_ns = st->window_start_wall_ns = WallNs();
  if (options.after_attach) options.after_attach();
  RETURN_IF_ERROR(MakeTargetTools(*st));
  return std::unique_ptr<Recording>(new Recording(std::move(st)));
}

double Recording::elapsed_s() const {
  return static_cast<double>(MonotonicNs() - state_->start_ns) / 1e9;
}

bool Recording::Poll() {
  State& st = *state_;
  st.polled += st.sampler->Poll();
  TakeNew(st);
  const double elapsed = elapsed_s();
  if (MonotonicNs() - st.last_tick_ns >= 1000000000) {
    if (st.options.adjust_frequency) Govern(st, elapsed);
    if (st.options.progress) st.options.progress(elapsed, st.polled);
    st.last_tick_ns = MonotonicNs();
  }
  if (st.options.stop != nullptr && st.options.stop->load()) return false;
  if (st.options.duration_s > 0 && elapsed >= st.options.duration_s) return false;
  for (pid_t pid : st.options.pids) {
    if (Alive(pid)) return true;
  }
  return false;
}

Status Recording::Follow(const std::vector<pid_t>& pids, const std::string& service) {
  State& st = *state_;
  CHECK(!st.finished);
  // Per-thread events: AddProcess refuses, saying why.
  if (!st.sampler->system_wide() && !pids.empty()) return st.sampler->AddProcess(pids[0]);
  size_t recorded = 0;  // Of `pids`: already recorded, or added now.
  for (pid_t pid : pids) {
    if (std::find(st.options.pids.begin(), st.options.pids.end(), pid) != st.options.pids.end()) {
      ++recorded;
      continue;
    }
    // A process of a tree listed a moment ago may be gone: nothing to record.
    if (!Alive(pid)) continue;
    // Labelled before its first sample is kept; a label cached for an earlier process with
    // this pid is dropped.
    if (!service.empty()) st.options.services[pid] = service;
    st.service_of.erase(static_cast<uint32_t>(pid));
    RETURN_IF_ERROR(MakeTools(st, pid));
    RETURN_IF_ERROR(st.sampler->AddProcess(pid));
    st.options.pids.push_back(pid);
    ++recorded;
  }
  // A process that crashed again before it could be followed is not "followed".
  if (recorded == 0) {
    return Err(pids.empty()
                   ? "no process to follow"
                   : "pid " + std::to_string(pids[0]) + " exited before it could be followed");
  }
  return Status::Ok();
}

Profile Recording::TakeWindow() {
  State& st = *state_;
  const int64_t now = WallNs();
  Profile p = BuildWindowProfile(st, std::exchange(st.window, {}));
  p.time_nanos = st.window_start_wall_ns;
  p.duration_nanos = now - st.window_start_wall_ns;
  st.window_start_wall_ns = now;
  return p;
}

RecordResult Recording::Finish() {
  State& st = *state_;
  CHECK(!st.finished);
  st.finished = true;
  st.sampler->Stop();
  const int64_t stop_wall_ns = WallNs();
  if (st.options.after_stop) st.options.after_stop();
  RecordResult& result = st.result;
  result.elapsed_s = static_cast<double>(MonotonicNs() - st.start_ns) / 1e9;
  for (pid_t pid : st.options.pids) {
    if (!Alive(pid)) result.exited.push_back(pid);
  }
  TakeNew(st);
  result.samples = st.window.size();
  result.unwind_s = static_cast<double>(st.unwind_ns) / 1e9;
  if (result.dwarf_unwound > 0) {
    result.dwarf_avg_depth =
        static_cast<double>(st.dwarf_frames) / static_cast<double>(result.dwarf_unwound);
  }
  const RingStats stats = st.sampler->stats();
  result.lost = stats.lost;
  result.malformed = stats.malformed;
  result.discarded_bytes = stats.discarded_bytes;
  result.kernel_frames = st.sampler->kernel_frames();
  result.system_wide = st.sampler->system_wide();
  result.filtered = st.sampler->filtered();
  result.final_frequency_hz = st.sampler->frequency_hz();
  result.child_processes = st.sampler->ChildProcesses().size();
  const int64_t sym_start = MonotonicNs();
  result.profile = BuildWindowProfile(st, std::exchange(st.window, {}));
  result.symbolize_s = static_cast<double>(MonotonicNs() - sym_start) / 1e9;
  result.profile.time_nanos = st.window_start_wall_ns;
  result.profile.duration_nanos = stop_wall_ns - st.window_start_wall_ns;
  const std::string unwinding =
      st.dwarf
          ? "DWARF unwinding (" + std::to_string(st.options.stack_bytes) + "-byte stack copies)"
          : "frame-pointer callchains";
  std::string rate = std::to_string(st.options.frequency_hz) + " Hz";
  if (result.final_frequency_hz != st.options.frequency_hz) {
    rate += " (lowered to " + std::to_string(result.final_frequency_hz) + " Hz while recording)";
  }
  result.profile.comments.push_back(
      "framescope record: cpu-clock at " + rate + ", " +
      (result.system_wide ? "system-wide per-CPU events" : "per-thread events") + ", " + unwinding +
      (result.kernel_frames ? "" : ", no kernel frames (refused)"));
  return std::move(result);
}

StatusOr<RecordResult> Record(const RecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Recording> recording, Recording::Start(options));
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (recording->Poll());
  return recording->Finish();
}

}  // namespace fs::profile
