// framescope record: a CPU profile of running processes (or of a command it starts) in pprof
// format, plus folded stacks. Sampling: cpu-clock at --frequency Hz, every thread (new ones
// too), frame-pointer callchains or (--unwind dwarf) DWARF unwinding of a copy of each sample's
// user stack; symbolization with libdwfl.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "src/record/recorder.h"
#include "src/system/state.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

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
void PrintUnwinding(const profile::RecordResult& r, profile::Unwind unwind) {
  for (const auto& [service, c] : r.unwind_by_service) {
    const double all = static_cast<double>(c.full + c.fp_fallback + c.truncated);
    if (all == 0) continue;
    auto pct = [all](uint64_t n) { return 100.0 * static_cast<double>(n) / all; };
    if (unwind == profile::Unwind::kDwarf) {
      printf(
          "unwinding %s: %.1f%% full (CFI), %.1f%% by frame-pointer fallback, %.1f%% "
          "truncated, of %.0f samples with user frames\n",
          service.c_str(), pct(c.full), pct(c.fp_fallback), pct(c.truncated), all);
    } else {
      printf(
          "unwinding %s: %.1f%% full, %.1f%% truncated (no caller, or cut at a junk "
          "return address), of %.0f samples with user frames\n",
          service.c_str(), pct(c.full), pct(c.truncated), all);
    }
  }
}

}  // namespace

int RecordMain(int argc, char** argv) {
  std::string pid_list, service, state_dir = kDefaultStateDir, out = "framescope.prof", folded;
  double duration = 10;
  int frequency = 99;
  std::string unwind = "fp";
  int stack_bytes = 8192;
  FlagSet flags(
      "framescope record",
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
      "Writes pprof (gzip protobuf: `go tool pprof OUT.prof`) and folded stacks.\n"
      "Targets: --pid, --service (of the system `up` started), or `-- CMD ARGS...`.\n"
      "Ctrl-C stops early and keeps what was recorded.");
  flags.String("pid", &pid_list, "process ids, comma-separated");
  flags.String("service", &service, "service names of the running system, comma-separated");
  flags.String("state-dir", &state_dir, "the state dir given to `up` (with --service)");
  flags.Double("duration", &duration, "seconds to record (0: until the targets exit / Ctrl-C)");
  flags.Int("frequency", &frequency, "samples per second per CPU");
  flags.String("unwind", &unwind,
               "how user stacks are walked: fp (frame pointers, the kernel's callchain) or "
               "dwarf (CFI over a copy of each sample's user stack)");
  flags.Int("stack-bytes", &stack_bytes,
            "with --unwind dwarf: user stack bytes copied per sample, 512..65528, a multiple "
            "of 8 (deeper stacks need more)");
  flags.String("out", &out, "pprof output");
  flags.ShortName('o', "out");
  flags.String("folded", &folded, "folded stacks output (default: OUT with .folded)");
  flags.AllowPositional("[-- CMD ARGS...]");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (folded.empty()) {
    folded = SwapExtension(out, ".prof", ".folded");
  }
  int targets = !pid_list.empty() + !service.empty() + !flags.positional().empty();
  if (targets != 1) {
    fprintf(stderr, "framescope record: give exactly one of --pid, --service or -- CMD\n");
    return 2;
  }
  if (frequency < 1 || frequency > 10000 || duration < 0) {
    fprintf(stderr, "framescope record: --frequency must be 1..10000, --duration >= 0\n");
    return 2;
  }
  if (unwind != "fp" && unwind != "dwarf") {
    fprintf(stderr, "framescope record: --unwind must be fp or dwarf, not '%s'\n", unwind.c_str());
    return 2;
  }
  if (flags.WasSet("stack-bytes") && unwind != "dwarf") {
    fprintf(stderr, "framescope record: --stack-bytes needs --unwind dwarf\n");
    return 2;
  }
  if (stack_bytes < static_cast<int>(profile::kMinStackBytes) ||
      stack_bytes > static_cast<int>(profile::kMaxStackBytes) || stack_bytes % 8 != 0) {
    fprintf(stderr, "framescope record: --stack-bytes must be a multiple of 8 in %u..%u, not %d\n",
            profile::kMinStackBytes, profile::kMaxStackBytes, stack_bytes);
    return 2;
  }

  profile::RecordOptions opts;
  opts.frequency_hz = frequency;
  opts.duration_s = duration;
  opts.unwind = unwind == "dwarf" ? profile::Unwind::kDwarf : profile::Unwind::kFramePointer;
  opts.stack_bytes = static_cast<uint32_t>(stack_bytes);
  opts.stop = &g_stop;
  pid_t child = -1;
  int go_pipe[2] = {-1, -1};
  if (!pid_list.empty()) {
    for (const std::string& p : Split(pid_list, ',')) {
      char* end = nullptr;
      long v = strtol(p.c_str(), &end, 10);
      if (*end != '\0' || v <= 0) {
        fprintf(stderr, "framescope record: --pid: '%s' is not a process id\n", p.c_str());
        return 2;
      }
      opts.pids.push_back(static_cast<pid_t>(v));
    }
  } else if (!service.empty()) {
    if (Status st = ServicePids(state_dir, service, &opts.pids, &opts.services); !st.ok()) {
      fprintf(stderr, "framescope record: %s\n", st.message().c_str());
      return 1;
    }
  } else {
    // The command waits for the sampler to attach, then execs: its first instruction is
    // sampled.
    if (pipe2(go_pipe, O_CLOEXEC) != 0) {
      perror("framescope record: pipe");
      return 1;
    }
    std::vector<std::string> cmd = flags.positional();
    std::vector<char*> cmd_argv;
    for (auto& c : cmd) cmd_argv.push_back(c.data());
    cmd_argv.push_back(nullptr);
    child = fork();
    if (child < 0) {
      perror("framescope record: fork");
      return 1;
    }
    if (child == 0) {
      close(go_pipe[1]);
      char c;
      if (read(go_pipe[0], &c, 1) != 1) _exit(126);
      execvp(cmd_argv[0], cmd_argv.data());
      fprintf(stderr, "framescope record: cannot run %s: %s\n", cmd_argv[0], strerror(errno));
      _exit(127);
    }
    close(go_pipe[0]);
    opts.pids.push_back(child);
    opts.after_attach = [&go_pipe, child] {
      std::string self = "/proc/self/exe", target = "/proc/" + std::to_string(child) + "/exe";
      char a[4096] = {}, b[4096] = {};
      ssize_t na = readlink(self.c_str(), a, sizeof(a) - 1);
      if (write(go_pipe[1], "g", 1) != 1) return;
      close(go_pipe[1]);
      // Wait (up to 2 s) for the exec, so the symbolizer reads the command's modules.
      for (int i = 0; i < 200; ++i) {
        ssize_t nb = readlink(target.c_str(), b, sizeof(b) - 1);
        if (nb <= 0 || std::string(a, na > 0 ? na : 0) != std::string(b, nb)) break;
        usleep(10000);
      }
    };
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  opts.progress = [duration](double elapsed, size_t samples) {
    if (duration > 0) {
      fprintf(stderr, "\rrecording %.0f/%.0f s, %zu samples", elapsed, duration, samples);
    } else {
      fprintf(stderr, "\rrecording %.0f s, %zu samples", elapsed, samples);
    }
    fflush(stderr);
  };
  auto result = profile::Record(opts);
  fprintf(stderr, "\n");
  if (child > 0) {
    if (!result.ok()) kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
  }
  if (!result.ok()) {
    fprintf(stderr, "framescope record: %s\n", result.status().message().c_str());
    return 1;
  }
  if (result->samples == 0) {
    fprintf(stderr, "framescope record: no samples (were the targets idle?); nothing written\n");
    return 1;
  }
  if (Status st = profile::WritePprofFile(out, result->profile); !st.ok()) {
    fprintf(stderr, "framescope record: %s\n", st.message().c_str());
    return 1;
  }
  if (Status st = WriteFileAtomic(folded, profile::ToFolded(result->profile)); !st.ok()) {
    fprintf(stderr, "framescope record: %s\n", st.message().c_str());
    return 1;
  }
  printf("recorded %zu samples in %.1f s (%llu lost%s%s); symbolized in %.2f s\n", result->samples,
         result->elapsed_s, static_cast<unsigned long long>(result->lost),
         result->kernel_frames ? "" : ", no kernel frames: the host refuses them",
         result->exited.empty() ? "" : ", a target exited while recording", result->symbolize_s);
  printf("events: %s%s\n",
         result->system_wide ? "system-wide (one per CPU, filtered to the targets)"
                             : "per thread with inherit (system-wide refused: threads shorter "
                               "than a sample period are missed)",
         result->child_processes > 0
             ? (", plus " + std::to_string(result->child_processes) + " child process(es)").c_str()
             : "");
  if (opts.unwind == profile::Unwind::kDwarf) {
    const uint64_t all = result->dwarf_unwound + result->dwarf_failed;
    printf("DWARF-unwound %llu of %llu samples (%.1f%%, average depth %.1f) in %.2f s\n",
           static_cast<unsigned long long>(result->dwarf_unwound),
           static_cast<unsigned long long>(all),
           all > 0 ? 100.0 * static_cast<double>(result->dwarf_unwound) / all : 0.0,
           result->dwarf_avg_depth, result->unwind_s);
  }
  PrintUnwinding(*result, opts.unwind);
  printf(
      "losses: %llu records lost (ring full%s), %llu malformed records skipped (%llu bytes "
      "discarded), %llu samples without frames\n",
      static_cast<unsigned long long>(result->lost),
      result->system_wide ? "; system-wide, so not only the targets'" : "",
      static_cast<unsigned long long>(result->malformed),
      static_cast<unsigned long long>(result->discarded_bytes),
      static_cast<unsigned long long>(result->samples_without_frames));
  for (const std::string& w : result->warnings) printf("warning: %s\n", w.c_str());
  printf("wrote %s (pprof) and %s (folded)\n", out.c_str(), folded.c_str());
  return 0;
}

}  // namespace fs
