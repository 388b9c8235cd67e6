// framescope record: a CPU profile of running processes (or of a command it starts) in pprof
// format, plus folded stacks. Sampling: cpu-clock at --frequency Hz, every thread (new ones
// too), frame-pointer callchains or (--unwind dwarf) DWARF unwinding of a copy of each sample's
// user stack; symbolization with libdwfl.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>

#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/cli/command.h"
#include "src/cli/heap_record.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "src/record/recorder.h"
#include "src/system/state.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// "12,34" -> pids; each must be a whole number in pid_t's range (1..INT_MAX), so a huge value
// is an error instead of silently wrapping to another process's id.
Status ParsePids(const std::string& list, std::vector<pid_t>* pids) {
  std::vector<std::string> items = Split(list, ',');
  if (items.empty()) return Err("no process id given");
  for (const std::string& p : items) {
    char* end = nullptr;
    errno = 0;
    const long long v = strtoll(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || errno != 0 || v <= 0 || v > INT_MAX) {
      return Err("'" + p + "' is not a process id (a whole number 1.." + std::to_string(INT_MAX) +
                 ")");
    }
    pids->push_back(static_cast<pid_t>(v));
  }
  return Status::Ok();
}

// Resolves --service names to pids through the state.json of a running system.
Status ServicePids(const std::string& state_dir, const std::string& names, std::vector<pid_t>* pids,
                   std::map<pid_t, std::string>* services) {
  ASSIGN_OR_RETURN(StateDir dir, ResolveStateDir(state_dir));
  auto state = ReadState(dir);
  if (!state.ok() || !SupervisorRunning(*state)) {
    return Err("no running system in " + dir.root +
               " (start it with `framescope up`, or pass "
               "--state-dir)");
  }
  for (const std::string& name : Split(names, ',')) {
    bool found = false;
    for (const auto& s : state->Get("services").AsArray()) {
      if (s.Get("name").AsString() != name) continue;
      pid_t pid = static_cast<pid_t>(s.Get("pid").AsInt(-1));
      if (pid <= 0) return Err("service " + name + " is not running");
      pids->push_back(pid);
      (*services)[pid] = name;
      found = true;
    }
    if (!found) return Err("no service '" + name + "' in " + dir.StateFile());
  }
  return Status::Ok();
}

// One line per service: how its samples' user stacks were unwound.
void PrintUnwinding(const profile::RecordResult& r, profile::Unwind unwind, FILE* info) {
  for (const auto& [service, c] : r.unwind_by_service) {
    const double all = static_cast<double>(c.full + c.fp_fallback + c.truncated);
    if (all == 0) continue;
    auto pct = [all](uint64_t n) { return 100.0 * static_cast<double>(n) / all; };
    if (unwind == profile::Unwind::kDwarf) {
      fprintf(info,
              "unwinding %s: %.1f%% full (CFI), %.1f%% by frame-pointer fallback, %.1f%% "
              "truncated, of %.0f samples with user frames\n",
              service.c_str(), pct(c.full), pct(c.fp_fallback), pct(c.truncated), all);
    } else {
      fprintf(info,
              "unwinding %s: %.1f%% full, %.1f%% truncated (no caller, or cut at a junk "
              "return address), of %.0f samples with user frames\n",
              service.c_str(), pct(c.full), pct(c.truncated), all);
    }
  }
}

struct RecordFlags {
  std::string pid_list, service, state_dir = kDefaultStateDir, out = "framescope.prof", folded;
  double duration = 10;
  int frequency = 99;
  std::string unwind = "fp";
  int stack_bytes = 8192;
  bool keep_running = false, heap = false;
  std::vector<std::string> command;
};

constexpr const char* kRecordSummary =
    "Records a CPU profile of processes without changing them: perf_event_open\n"
    "cpu-clock samples for every thread (threads and child processes created while\n"
    "recording too; system-wide per-CPU events where allowed, else per-thread),\n"
    "symbolized with libdwfl (demangled names, file:line and inlined frames where debug\n"
    "info is installed; module+0xoffset otherwise; kernel frames from /proc/kallsyms).\n"
    "Code built without frame pointers (-fomit-frame-pointer, the -O2 default of most\n"
    "distributions' libraries) loses its callers that way: --unwind dwarf copies the\n"
    "registers and --stack-bytes of user stack at each sample and unwinds them with the\n"
    "binaries' CFI (.eh_frame) instead, at the cost of ~--stack-bytes per sample of\n"
    "kernel-to-user copying and some CPU to unwind.\n"
    "Writes pprof (gzip protobuf: `go tool pprof OUT.prof`) and folded stacks. Outputs are\n"
    "checked before recording: an existing output must be a regular file (replaced\n"
    "atomically); symlinks, devices, FIFOs and folders are refused, except \"-\" (standard\n"
    "output; the summary then goes to stderr) and /dev/null (discard). An output that is\n"
    "the same file as the other is refused.\n"
    "Targets: --pid, --service (of the system `up` started), or `-- CMD ARGS...`. A\n"
    "command still running when --duration ends is stopped (SIGTERM, SIGKILL after 5 s)\n"
    "unless --keep-running; --duration 0 records until it exits.\n"
    "--heap -- CMD records a heap profile instead: the command runs under\n"
    "libframescope_heap.so, which samples allocations (a Poisson process over bytes,\n"
    "mean 512 KiB; FRAMESCOPE_HEAP_SAMPLE_BYTES=N to change it) with their stacks; OUT\n"
    "gets pprof's alloc_objects, alloc_space, inuse_objects and inuse_space (`go tool\n"
    "pprof -sample_index=inuse_space OUT`), the folded output the bytes in use per stack.\n"
    "Ctrl-C (or SIGTERM) stops early and writes what was recorded; a second one quits at\n"
    "once without writing.\n"
    "Exit codes: 0 ok, 1 failure (nothing recorded, an output not written), 2 bad usage,\n"
    "130 interrupted (what was recorded is written).";

// Parses and validates; returns -1 to go on, else the exit code.
int ParseRecordFlags(int argc, char** argv, RecordFlags* f) {
  FlagSet flags("framescope record", kRecordSummary);
  flags.String("pid", &f->pid_list, "process ids, comma-separated");
  flags.String("service", &f->service, "service names of the running system, comma-separated");
  flags.String("state-dir", &f->state_dir, "the state dir given to `up` (with --service)");
  flags.Double("duration", &f->duration, "seconds to record (0: until the targets exit / Ctrl-C)");
  flags.Int("frequency", &f->frequency, "samples per second per CPU, 1..10000");
  flags.String("unwind", &f->unwind,
               "how user stacks are walked: fp (frame pointers, the kernel's callchain) or "
               "dwarf (CFI over a copy of each sample's user stack)");
  flags.Int("stack-bytes", &f->stack_bytes,
            "with --unwind dwarf: user stack bytes copied per sample, 512..65528, a multiple "
            "of 8 (deeper stacks need more)");
  flags.String("out", &f->out, "pprof output (\"-\": standard output)");
  flags.ShortName('o', "out");
  flags.String("folded", &f->folded, "folded stacks output (default: OUT with .folded)");
  flags.Bool("heap", &f->heap,
             "with -- CMD: record its heap (sampled allocations and their stacks), not CPU");
  flags.Bool("keep-running", &f->keep_running,
             "with -- CMD: leave the command running when --duration ends");
  flags.AllowPositional("[-- CMD ARGS...]");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  f->command = flags.positional();
  if (f->folded.empty()) {
    // Beside a regular file only: "-" or /dev/null must not grow "/dev/null.folded".
    f->folded = KindOfOutput(f->out) == OutputKind::kFile
                    ? SwapExtension(f->out, ".prof", ".folded")
                    : "/dev/null";
  }
  auto usage = [](const std::string& message) {
    fprintf(stderr, "framescope record: %s\n", message.c_str());
    return 2;
  };
  const int targets = !f->pid_list.empty() + !f->service.empty() + !f->command.empty();
  if (targets != 1) return usage("give exactly one of --pid, --service or -- CMD");
  if (f->frequency < 1 || f->frequency > 10000) {
    return usage("--frequency must be 1..10000, not " + std::to_string(f->frequency));
  }
  if (f->duration < 0 || f->duration > 7 * 24 * 3600) {
    return usage("--duration must be 0..604800 seconds (7 days; 0: until the targets exit)");
  }
  if (f->unwind != "fp" && f->unwind != "dwarf") {
    return usage("--unwind must be fp or dwarf, not '" + f->unwind + "'");
  }
  if (flags.WasSet("stack-bytes") && f->unwind != "dwarf") {
    return usage("--stack-bytes needs --unwind dwarf");
  }
  if (f->stack_bytes < static_cast<int>(profile::kMinStackBytes) ||
      f->stack_bytes > static_cast<int>(profile::kMaxStackBytes) || f->stack_bytes % 8 != 0) {
    return usage(
        "--stack-bytes must be a multiple of 8 in " + std::to_string(profile::kMinStackBytes) +
        ".." + std::to_string(profile::kMaxStackBytes) + ", not " + std::to_string(f->stack_bytes));
  }
  if (f->keep_running && f->command.empty()) return usage("--keep-running needs -- CMD");
  if (f->heap && f->command.empty()) {
    return usage("--heap starts the command under the heap library: give -- CMD");
  }
  for (const char* cpu_only : {"frequency", "unwind", "stack-bytes"}) {
    if (f->heap && flags.WasSet(cpu_only)) {
      return usage(std::string("--") + cpu_only + " is for CPU profiles, not --heap");
    }
  }
  if (Status st = CheckOutputs({f->out, f->folded}); !st.ok()) return usage(st.message());
  if (f->out == "-" && isatty(STDOUT_FILENO)) {
    return usage("-o -: refusing to write a binary profile to a terminal (redirect it)");
  }
  return -1;
}

// Both outputs are tried whatever happens to the other; every failure is reported.
bool WriteOutputs(const RecordFlags& f, const profile::Profile& p, FILE* info) {
  const Status pprof = profile::WritePprofFile(f.out, p);
  const Status folded = WriteOutput(f.folded, profile::ToFolded(p));
  for (const Status* st : {&pprof, &folded}) {
    if (!st->ok()) fprintf(stderr, "framescope record: %s\n", st->message().c_str());
  }
  if (pprof.ok() && folded.ok()) {
    fprintf(info, "wrote %s (pprof) and %s (folded)\n", OutputName(f.out).c_str(),
            OutputName(f.folded).c_str());
  } else if (pprof.ok() || folded.ok()) {
    fprintf(stderr, "framescope record: wrote only %s; the other output failed (above)\n",
            pprof.ok() ? f.out.c_str() : f.folded.c_str());
  }
  return pprof.ok() && folded.ok();
}

void PrintSummary(const profile::RecordResult& r, profile::Unwind unwind, FILE* info) {
  fprintf(info, "recorded %zu samples in %.1f s (%llu lost%s%s); symbolized in %.2f s\n", r.samples,
          r.elapsed_s, static_cast<unsigned long long>(r.lost),
          r.kernel_frames ? "" : ", no kernel frames: the host refuses them",
          r.exited.empty() ? "" : ", a target exited while recording", r.symbolize_s);
  fprintf(info, "events: %s%s\n",
          r.system_wide ? "system-wide (one per CPU, filtered to the targets)"
                        : "per thread with inherit (system-wide refused: threads shorter "
                          "than a sample period are missed)",
          r.child_processes > 0
              ? (", plus " + std::to_string(r.child_processes) + " child process(es)").c_str()
              : "");
  if (unwind == profile::Unwind::kDwarf) {
    const uint64_t all = r.dwarf_unwound + r.dwarf_failed;
    fprintf(info, "DWARF-unwound %llu of %llu samples (%.1f%%, average depth %.1f) in %.2f s\n",
            static_cast<unsigned long long>(r.dwarf_unwound), static_cast<unsigned long long>(all),
            all > 0 ? 100.0 * static_cast<double>(r.dwarf_unwound) / all : 0.0, r.dwarf_avg_depth,
            r.unwind_s);
  }
  PrintUnwinding(r, unwind, info);
  fprintf(info,
          "losses: %llu records lost (ring full%s), %llu malformed records skipped (%llu bytes "
          "discarded), %llu samples without frames\n",
          static_cast<unsigned long long>(r.lost),
          r.system_wide ? "; system-wide, so not only the targets'" : "",
          static_cast<unsigned long long>(r.malformed),
          static_cast<unsigned long long>(r.discarded_bytes),
          static_cast<unsigned long long>(r.samples_without_frames));
  for (const std::string& w : r.warnings) fprintf(info, "warning: %s\n", w.c_str());
}

profile::RecordOptions MakeOptions(const RecordFlags& f) {
  profile::RecordOptions opts;
  opts.frequency_hz = f.frequency;
  opts.duration_s = f.duration;
  opts.unwind = f.unwind == "dwarf" ? profile::Unwind::kDwarf : profile::Unwind::kFramePointer;
  opts.stack_bytes = static_cast<uint32_t>(f.stack_bytes);
  opts.stop = &g_stop;
  const double duration = f.duration;
  opts.progress = [duration](double elapsed, size_t samples) {
    if (duration > 0) {
      fprintf(stderr, "\rrecording %.0f/%.0f s, %zu samples", elapsed, duration, samples);
    } else {
      fprintf(stderr, "\rrecording %.0f s, %zu samples", elapsed, samples);
    }
    fflush(stderr);
  };
  return opts;
}

}  // namespace

int RecordMain(int argc, char** argv) {
  RecordFlags f;
  if (int code = ParseRecordFlags(argc, argv, &f); code >= 0) return code;
  profile::RecordOptions opts = MakeOptions(f);
  if (!f.pid_list.empty()) {
    if (Status st = ParsePids(f.pid_list, &opts.pids); !st.ok()) {
      fprintf(stderr, "framescope record: --pid: %s\n", st.message().c_str());
      return 2;
    }
  } else if (!f.service.empty()) {
    if (Status st = ServicePids(f.state_dir, f.service, &opts.pids, &opts.services); !st.ok()) {
      fprintf(stderr, "framescope record: %s\n", st.message().c_str());
      return 1;
    }
  }
  // A command gone before its release (or a closed stdout with -o -) is an error to report,
  // not a silent death by SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);  // Before the command starts: a Ctrl-C from now on still writes.
  if (f.heap) {
    return RecordHeapProfile({.command = f.command,
                              .duration_s = f.duration,
                              .keep_running = f.keep_running,
                              .out = f.out,
                              .folded = f.folded,
                              .stop = &g_stop});
  }
  std::optional<ChildCommand> command;
  if (!f.command.empty()) {
    auto started = ChildCommand::Start(
        f.command,
        {.hold_until_release = true, .stdout_to_stderr = f.out == "-" || f.folded == "-"});
    if (!started.ok()) {
      fprintf(stderr, "framescope record: %s\n", started.status().message().c_str());
      return 1;
    }
    command = std::move(*started);
    opts.pids.push_back(command->pid());
    opts.after_attach = [&command] {
      if (Status st = command->Release(); !st.ok()) {
        fprintf(stderr, "framescope record: %s\n", st.message().c_str());
      }
    };
  }
  auto result = profile::Record(opts);
  fprintf(stderr, "\n");
  std::string command_end;
  if (command) command_end = command->End(f.keep_running && result.ok());
  if (!command_end.empty() && !(result.ok() && result->samples == 0)) {
    fprintf(stderr, "framescope record: %s\n", command_end.c_str());
  }
  if (!result.ok()) {
    fprintf(stderr, "framescope record: %s\n", result.status().message().c_str());
    return 1;
  }
  if (result->samples == 0) {
    fprintf(stderr, "framescope record: no samples in %.1f s (%s); nothing written\n",
            result->elapsed_s,
            command ? ("the command " + command_end).c_str() : "were the targets idle?");
    return 1;
  }
  // Standard output may carry an output; the summary then goes to stderr.
  FILE* info = f.out == "-" || f.folded == "-" ? stderr : stdout;
  PrintSummary(*result, opts.unwind, info);
  if (!WriteOutputs(f, result->profile, info)) return 1;
  return g_stop.load() ? 130 : 0;
}

}  // namespace fs
