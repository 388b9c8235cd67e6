#include "src/regression/compare.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "src/base/file_util.h"
#include "src/base/stats.h"
#include "src/profile/call_tree.h"
#include "src/profile/pprof.h"

namespace fs::regression {
namespace {

namespace stdfs = std::filesystem;

// A function must hold at least this share (%) of its service's CPU on one side to be tested:
// below it a profile has a handful of samples, all noise.
constexpr double kMinFunctionSharePct = 1.0;
constexpr size_t kMaxFunctions = 40;
constexpr const char* kTestMethod =
    "Mann-Whitney U, two-sided: exact when no ties and n <= 50 per side, else the normal "
    "approximation with tie and continuity correction";
constexpr const char* kFunctionMethod =
    "per function: one value per profile (runs: self CPU seconds per second of the profile's "
    "window; profile sets: self CPU seconds; a share of the service's CPU only when a profile "
    "has no duration, and then informational); p adjusted by Holm-Bonferroni over the functions "
    "of one service (all of them, before the table keeps the first 40); for runs a function's "
    "regression or improvement stands only when the service's CPU per second moved the same "
    "way, else it is inconclusive (CPU moved between functions)";

bool IsDir(const std::string& path) {
  std::error_code ec;
  return stdfs::is_directory(path, ec);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t end; (end = s.find(sep, start)) != std::string::npos; start = end + 1) {
    out.push_back(s.substr(start, end - start));
  }
  out.push_back(s.substr(start));
  return out;
}

// Sorted entries of `dir` (names only) matching `keep`.
template <typename Keep>
std::vector<std::string> ListDir(const std::string& dir, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir, ec)) {
    if (keep(e)) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Every run in a history folder (subfolders with run.json), oldest first. A run.json that cannot
// be read (corrupt, or a newer format) is skipped with a note naming it, so one bad run does not
// disable every label: and latest comparison.
StatusOr<std::vector<RunManifest>> LoadHistory(const std::string& dir,
                                               std::vector<std::string>* notes) {
  if (!IsDir(dir)) return Err(dir + ": no such history folder (--history DIR)");
  std::vector<RunManifest> runs;
  for (const std::string& name : ListDir(dir, [](const stdfs::directory_entry& e) {
         std::error_code ec;
         return e.is_directory(ec) && stdfs::exists(e.path() / kRunFile, ec);
       })) {
    auto m = LoadRunManifest(dir + "/" + name);
    if (!m.ok()) {
      notes->push_back("skipped unreadable run: " + m.status().message());
      continue;
    }
    runs.push_back(std::move(*m));
  }
  std::stable_sort(runs.begin(), runs.end(), [](const RunManifest& a, const RunManifest& b) {
    return a.started_at < b.started_at;
  });
  return runs;
}

// The path as one spelling (as given when it cannot be resolved), so one run named two ways is
// recognised as one.
std::string Resolved(const std::string& path) {
  auto p = CanonicalPath(path);
  return p.ok() ? *p : path;
}

void AddRun(RunManifest run, Side* side) {
  if (run.status != "ok") {
    side->notes.push_back("skipped " + run.status + " run " + run.dir +
                          (run.error.empty() ? "" : ": " + run.error));
    return;
  }
  side->runs.push_back(std::move(run));
}

// `latest` / `latest~K`: the newest (K-th before the newest) ok run of the history.
Status AddLatest(const std::string& part, const std::string& history, Side* side) {
  size_t k = 0;
  if (part.size() > 6) {
    const std::string digits = part.substr(7);
    if (part[6] != '~' || digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return Err("\"" + part + "\": expected latest or latest~K (K a whole number)");
    }
    k = std::stoul(digits);  // at most 9 digits: cannot overflow
  }
  ASSIGN_OR_RETURN(std::vector<RunManifest> runs, LoadHistory(history, &side->notes));
  std::erase_if(runs, [](const RunManifest& m) { return m.status != "ok"; });
  if (runs.size() <= k) {
    return Err("\"" + part + "\": " + history + " has " + std::to_string(runs.size()) +
               " ok run(s)");
  }
  side->runs.push_back(runs[runs.size() - 1 - k]);
  return Status::Ok();
}

Status AddLabel(const std::string& label, const std::string& history, Side* side) {
  ASSIGN_OR_RETURN(std::vector<RunManifest> runs, LoadHistory(history, &side->notes));
  const size_t before = side->runs.size();
  for (RunManifest& m : runs) {
    if (m.label == label) AddRun(std::move(m), side);
  }
  if (side->runs.size() == before) {
    return Err("label:" + label + ": no ok run labelled \"" + label + "\" under " + history);
  }
  return Status::Ok();
}

Status AddProfileSet(const std::string& dir, const std::vector<std::string>& files, Side* side) {
  for (const std::string& name : files) {
    const std::string path = dir + "/" + name;
    auto p = profile::ReadPprofFile(path);
    if (!p.ok()) return p.status();  // names the file already
    side->profiles[kProgramGroup].push_back(std::move(*p));
    side->profile_files[kProgramGroup].push_back(path);
  }
  side->profile_set = true;
  return Status::Ok();
}

Status AddPart(const std::string& part, const std::string& history, Side* side) {
  if (part.rfind("label:", 0) == 0) return AddLabel(part.substr(6), history, side);
  if (part == "latest" || part.rfind("latest~", 0) == 0) return AddLatest(part, history, side);
  if (!IsDir(part)) return Err(part + ": not a folder, label:NAME or latest[~K]");
  if (PathExists(part + "/" + kRunFile)) {
    ASSIGN_OR_RETURN(RunManifest m, LoadRunManifest(part));
    AddRun(std::move(m), side);
    return Status::Ok();
  }
  std::vector<std::string> profs = ListDir(part, [](const stdfs::directory_entry& e) {
    std::error_code ec;
    return e.is_regular_file(ec) && e.path().extension() == ".prof";
  });
  if (!profs.empty()) return AddProfileSet(part, profs, side);
  ASSIGN_OR_RETURN(std::vector<RunManifest> runs, LoadHistory(part, &side->notes));
  if (runs.empty() && side->notes.empty()) {
    return Err(part + ": no run.json, no run folders with one, and no *.prof files in it");
  }
  for (RunManifest& m : runs) AddRun(std::move(m), side);
  return Status::Ok();
}

// A run or profile named twice in one side (`latest,label:v2`, `A,./A`) counts once: counted
// twice its repetitions would look like more evidence than there is.
void Dedupe(Side* side) {
  std::set<std::string> dirs;
  std::erase_if(side->runs, [&](const RunManifest& r) {
    const bool again = !dirs.insert(Resolved(r.dir)).second;
    if (again) side->notes.push_back("run " + r.dir + " given more than once: counted once");
    return again;
  });
  auto& files = side->profile_files[kProgramGroup];
  auto& profiles = side->profiles[kProgramGroup];
  std::set<std::pair<dev_t, ino_t>> seen;
  for (size_t i = 0; i < files.size();) {
    struct stat st {};
    if (stat(files[i].c_str(), &st) == 0 && !seen.insert({st.st_dev, st.st_ino}).second) {
      side->notes.push_back("profile " + files[i] + " given more than once: counted once");
      files.erase(files.begin() + static_cast<ptrdiff_t>(i));
      profiles.erase(profiles.begin() + static_cast<ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
  if (files.empty()) {
    side->profile_files.erase(kProgramGroup);
    side->profiles.erase(kProgramGroup);
  }
}

// What a side was read from, resolved -> as named: its run folders, or a profile set's files.
std::map<std::string, std::string> Sources(const Side& side) {
  std::map<std::string, std::string> out;
  for (const RunManifest& r : side.runs) out.emplace(Resolved(r.dir), "run " + r.dir);
  if (!side.profile_set) return out;
  for (const auto& [group, files] : side.profile_files) {
    for (const std::string& f : files) out.emplace(Resolved(f), "profile " + f);
  }
  return out;
}

// Pools the runs' metric values by name and loads their CPU profiles.
void PoolRuns(Side* side) {
  std::map<std::string, size_t> index;
  for (const RunManifest& run : side->runs) {
    for (const Metric& m : run.metrics) {
      auto [it, added] = index.emplace(m.name, side->metrics.size());
      if (added) side->metrics.push_back(m);
      if (!added) {
        std::vector<double>& v = side->metrics[it->second].values;
        v.insert(v.end(), m.values.begin(), m.values.end());
      }
    }
    for (const auto& [service, rel] : run.profiles) {
      const std::string path = run.dir + "/" + rel;
      auto p = profile::ReadPprofFile(path);
      if (!p.ok()) {
        side->notes.push_back("skipped profile: " + p.status().message());  // names the file
        continue;
      }
      side->profiles[service].push_back(std::move(*p));
      side->profile_files[service].push_back(path);
    }
  }
}

}  // namespace

StatusOr<Side> LoadSide(const std::string& spec, const std::string& history_dir) {
  Side side;
  side.spec = spec;
  for (const std::string& part : Split(spec, ',')) {
    if (part.empty()) return Err("\"" + spec + "\": an empty part");
    Status st = AddPart(part, history_dir, &side);
    if (!st.ok() && part != spec) {
      return st.Annotate("\"" + spec + "\" (commas separate the parts of a side)");
    }
    RETURN_IF_ERROR(st);
  }
  if (side.profile_set && !side.runs.empty()) {
    return Err("\"" + spec + "\" mixes runs and *.prof folders; give one kind per side");
  }
  if (!side.profile_set && side.runs.empty()) {
    return Err("\"" + spec + "\": no ok run" +
               (side.notes.empty() ? std::string() : " (" + side.notes.back() + ")"));
  }
  Dedupe(&side);
  // One history read for several parts (latest,label:x) notes its unreadable runs once.
  std::set<std::string> said;
  std::erase_if(side.notes, [&](const std::string& n) { return !said.insert(n).second; });
  PoolRuns(&side);
  return side;
}

std::vector<std::string> Mismatches(const Side& baseline, const Side& current) {
  std::set<std::string> hosts, configs;
  for (const Side* s : {&baseline, &current}) {
    for (const RunManifest& r : s->runs) {
      hosts.insert(r.host);
      configs.insert(r.config_hash);
    }
  }
  std::vector<std::string> out;
  auto join = [](const std::set<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + (x.empty() ? "(none)" : x);
    return s;
  };
  if (hosts.size() > 1) out.push_back("runs from different hosts: " + join(hosts));
  if (configs.size() > 1)
    out.push_back("runs of different configurations (config_hash " + join(configs) + ")");
  return out;
}

namespace {

// One profile's CPU: its total and each function's self value, in seconds for CPU profiles
// (nanoseconds) and in the profile's own unit otherwise; window_s: the recording's duration.
struct ProfileCpu {
  double total = 0, window_s = 0;
  std::map<std::string, double> self;
};

ProfileCpu CpuOf(const profile::Profile& p) {
  profile::CallTree tree = profile::BuildCallTree(p, profile::DisplayValueIndex(p));
  const double scale = tree.value_unit == "nanoseconds" ? 1e-9 : 1.0;
  std::vector<int64_t> self = profile::SelfValues(tree);
  ProfileCpu cpu;
  cpu.total = static_cast<double>(tree.total()) * scale;
  cpu.window_s = static_cast<double>(p.duration_nanos) * 1e-9;
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    if (self[i] > 0)
      cpu.self[tree.NameOf(static_cast<int32_t>(i))] += static_cast<double>(self[i]) * scale;
  }
  return cpu;
}

std::vector<ProfileCpu> CpusOf(const std::vector<profile::Profile>& profiles) {
  std::vector<ProfileCpu> out;
  for (const auto& p : profiles) out.push_back(CpuOf(p));
  return out;
}

// Each function's share (%) of all the profiles' CPU together.
std::map<std::string, double> PooledShares(const std::vector<ProfileCpu>& cpus) {
  double total = 0;
  std::map<std::string, double> shares;
  for (const ProfileCpu& c : cpus) {
    total += c.total;
    for (const auto& [fn, v] : c.self) shares[fn] += v;
  }
  for (auto& [fn, v] : shares) v = total > 0 ? v / total * 100 : 0;
  return shares;
}

// What one function's value per profile is:
// - kSelfSeconds: a profile set (fixed work per profile): self CPU seconds.
// - kSelfRate: runs (a service under load for a window): self CPU seconds per second of the
//   profile's window. Not the share of the service's CPU: shares add up to 100 %, so one function
//   getting faster raises every other's share and would mark them all regressed.
// - kShare: runs whose profiles lack a duration: the share, shown but informational only (it
//   never rolls up into a verdict, for the same reason).
enum class FunctionMetric { kSelfSeconds, kSelfRate, kShare };

FunctionMetric FunctionMetricFor(bool profile_set, const std::vector<ProfileCpu>& base,
                                 const std::vector<ProfileCpu>& cur) {
  if (profile_set) return FunctionMetric::kSelfSeconds;
  for (const auto* cpus : {&base, &cur}) {
    for (const ProfileCpu& c : *cpus) {
      if (!(c.window_s > 0)) return FunctionMetric::kShare;
    }
  }
  return FunctionMetric::kSelfRate;
}

const char* FunctionMetricName(FunctionMetric m) {
  switch (m) {
    case FunctionMetric::kSelfSeconds:
      return "self CPU s";
    case FunctionMetric::kSelfRate:
      return "self CPU s per s";
    case FunctionMetric::kShare:
      return "self share % (informational)";
  }
  return "";
}

// The function's value in each profile; a function without samples in a profile measured 0.
std::vector<double> PerProfile(const std::vector<ProfileCpu>& cpus, const std::string& fn,
                               FunctionMetric metric) {
  std::vector<double> v;
  for (const ProfileCpu& c : cpus) {
    auto it = c.self.find(fn);
    const double self = it == c.self.end() ? 0 : it->second;
    switch (metric) {
      case FunctionMetric::kSelfSeconds:
        v.push_back(self);
        break;
      case FunctionMetric::kSelfRate:
        v.push_back(self / c.window_s);
        break;
      case FunctionMetric::kShare:
        v.push_back(c.total > 0 ? self / c.total * 100 : 0);
        break;
    }
  }
  return v;
}

// A function's CPU per second can rise without it getting slower: when the service is busy for
// its whole window (saturated, or fixed work per run), another function getting faster lets it
// run more often. So a function's regression (improvement) of a run stands only when the
// service's own CPU per second moved the same way; else it is inconclusive, CPU having moved
// between functions, and does not roll up.
void RequireTotalToAgree(const std::vector<ProfileCpu>& base, const std::vector<ProfileCpu>& cur,
                         const VerdictOptions& options, std::vector<FunctionResult>* rows) {
  auto rates = [](const std::vector<ProfileCpu>& cpus) {
    std::vector<double> v;
    for (const ProfileCpu& c : cpus) v.push_back(c.total / c.window_s);
    return v;
  };
  const std::string total = Judge(rates(base), rates(cur), false, options).verdict;
  for (FunctionResult& r : *rows) {
    const std::string& v = r.judgement.verdict;
    if ((v == kRegression || v == kImprovement) && v != total) {
      r.judgement.reason += "; but the service's CPU per second is \"" + total +
                            "\": CPU moved between functions (another one faster or slower, or "
                            "the service busy all the time), so this one cannot be judged alone";
      r.judgement.verdict = kInconclusive;
    }
  }
}

std::vector<FunctionResult> CompareFunctions(const std::vector<ProfileCpu>& base,
                                             const std::vector<ProfileCpu>& cur,
                                             FunctionMetric metric, const VerdictOptions& options) {
  std::map<std::string, double> b = PooledShares(base), c = PooledShares(cur);
  std::vector<FunctionResult> rows;
  std::set<std::string> names;
  for (const auto* shares : {&b, &c}) {
    for (const auto& [fn, pct] : *shares) {
      if (pct >= kMinFunctionSharePct) names.insert(fn);
    }
  }
  for (const std::string& fn : names) {
    FunctionResult r;
    r.function = fn;
    r.baseline_share_pct = b.count(fn) ? b[fn] : 0;
    r.current_share_pct = c.count(fn) ? c[fn] : 0;
    r.delta_points = r.current_share_pct - r.baseline_share_pct;
    r.metric = FunctionMetricName(metric);
    r.informational = metric == FunctionMetric::kShare;
    r.baseline = PerProfile(base, fn, metric);
    r.current = PerProfile(cur, fn, metric);
    r.judgement = Judge(r.baseline, r.current, false, options);
    r.raw_p = r.judgement.p;
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](const FunctionResult& x, const FunctionResult& y) {
    return std::fabs(x.delta_points) != std::fabs(y.delta_points)
               ? std::fabs(x.delta_points) > std::fabs(y.delta_points)
               : x.function < y.function;
  });
  // Holm over every function tested, before the table is cut to its first rows.
  std::vector<double> raw;
  for (const FunctionResult& r : rows) raw.push_back(r.raw_p);
  std::vector<double> adjusted = HolmAdjust(raw);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].judgement.p = adjusted[i];
    Decide(&rows[i].judgement, false, options, static_cast<int>(rows.size()));
  }
  if (metric == FunctionMetric::kSelfRate) RequireTotalToAgree(base, cur, options, &rows);
  if (rows.size() > kMaxFunctions) rows.resize(kMaxFunctions);
  return rows;
}

void CompareMetrics(const Side& baseline, const Side& current, Comparison* c) {
  std::map<std::string, const Metric*> b, cur;
  for (const Metric& m : baseline.metrics) {
    if (!m.values.empty()) b[m.name] = &m;
  }
  for (const Metric& m : current.metrics) {
    if (!m.values.empty()) cur[m.name] = &m;
  }
  // A metric measured before but not now (its service died, its counter broke) leaves its group
  // at least inconclusive: "no change" would claim what was not measured. A metric only in the
  // current side (newly measured) has nothing to compare with and is listed only.
  for (const auto& [name, m] : b) {
    if (cur.count(name)) continue;
    c->missing.emplace_back(name, "current");
    c->groups[m->group] = kInconclusive;
  }
  for (const auto& [name, m] : cur) {
    if (!b.count(name)) {
      c->missing.emplace_back(name, "baseline");
      continue;
    }
    MetricResult r;
    r.metric = *b[name];
    r.metric.values.clear();
    r.baseline = b[name]->values;
    r.current = m->values;
    r.judgement = Judge(r.baseline, r.current, r.metric.higher_is_better, c->options);
    c->metrics.push_back(std::move(r));
  }
}

// A profile set's own metric: each profile's total CPU seconds.
Metric TotalCpu(const std::vector<ProfileCpu>& cpus) {
  Metric m;
  m.name = std::string(kProgramGroup) + "/cpu_s";
  m.group = kProgramGroup;
  m.unit = "s";
  m.counter = "pprof: total CPU of each profile";
  for (const ProfileCpu& c : cpus) m.values.push_back(c.total);
  return m;
}

void RollUp(Comparison* c) {
  auto worse = [](std::string* slot, const std::string& v) {
    if (slot->empty() || VerdictRank(v) > VerdictRank(*slot)) *slot = v;
  };
  for (const MetricResult& m : c->metrics) worse(&c->groups[m.metric.group], m.judgement.verdict);
  for (const auto& [group, rows] : c->functions) {
    for (const FunctionResult& r : rows) {
      if (!r.informational &&
          (r.judgement.verdict == kRegression || r.judgement.verdict == kImprovement)) {
        worse(&c->groups[group], r.judgement.verdict);
      }
    }
  }
  c->verdict = kNoChange;
  for (const auto& [group, v] : c->groups) worse(&c->verdict, v);
}

}  // namespace

profile::Profile MergeProfiles(const std::vector<profile::Profile>& profiles) {
  profile::Profile out;
  if (profiles.empty()) return out;
  out.sample_types = profiles[0].sample_types;
  out.period_type = profiles[0].period_type;
  out.period = profiles[0].period;
  out.default_sample_type = profiles[0].default_sample_type;
  uint64_t mo = 0, lo = 0, fo = 0;  // id offsets: each profile's ids moved past the previous'
  for (const profile::Profile& p : profiles) {
    if (p.sample_types != out.sample_types) continue;
    uint64_t mmax = 0, lmax = 0, fmax = 0;
    for (profile::Mapping m : p.mappings) {
      mmax = std::max(mmax, m.id);
      m.id += mo;
      out.mappings.push_back(std::move(m));
    }
    for (profile::Function f : p.functions) {
      fmax = std::max(fmax, f.id);
      f.id += fo;
      out.functions.push_back(std::move(f));
    }
    for (profile::Location l : p.locations) {
      lmax = std::max(lmax, l.id);
      l.id += lo;
      if (l.mapping_id != 0) l.mapping_id += mo;
      for (auto& line : l.lines) line.function_id += fo;
      out.locations.push_back(std::move(l));
    }
    for (profile::Sample s : p.samples) {
      for (auto& id : s.location_ids) id += lo;
      out.samples.push_back(std::move(s));
    }
    out.duration_nanos += p.duration_nanos;
    mo += mmax;
    lo += lmax;
    fo += fmax;
  }
  return out;
}

Comparison Compare(const Side& baseline, const Side& current, const VerdictOptions& options) {
  Comparison c;
  c.options = options;
  c.warnings = Mismatches(baseline, current);
  for (const Side* s : {&baseline, &current}) {
    for (const std::string& note : s->notes) c.warnings.push_back(s->spec + ": " + note);
  }
  // A run on both sides (e.g. a label that also matches the run being checked) pulls the two
  // sides together: say so rather than quietly weaken the verdict.
  const std::map<std::string, std::string> base = Sources(baseline);
  for (const auto& [resolved, name] : Sources(current)) {
    if (base.count(resolved)) c.warnings.push_back(name + " is on both sides");
  }
  Side b = baseline, cur = current;  // profile sets gain their total CPU metric
  std::map<std::string, std::vector<ProfileCpu>> bcpu, ccpu;
  for (const auto& [group, profiles] : baseline.profiles) bcpu[group] = CpusOf(profiles);
  for (const auto& [group, profiles] : current.profiles) ccpu[group] = CpusOf(profiles);
  if (baseline.profile_set) b.metrics.push_back(TotalCpu(bcpu[kProgramGroup]));
  if (current.profile_set) cur.metrics.push_back(TotalCpu(ccpu[kProgramGroup]));
  CompareMetrics(b, cur, &c);
  for (const auto& [group, cpus] : ccpu) {
    if (!bcpu.count(group)) c.warnings.push_back(group + ": CPU profiles only in the current side");
  }
  for (const auto& [group, cpus] : bcpu) {
    if (!ccpu.count(group)) {
      c.warnings.push_back(group + ": CPU profiles only in the baseline side");
      continue;
    }
    const FunctionMetric metric = FunctionMetricFor(baseline.profile_set, cpus, ccpu[group]);
    c.functions[group] = CompareFunctions(cpus, ccpu[group], metric, options);
    c.merged_baseline[group] = MergeProfiles(baseline.profiles.at(group));
    c.merged_current[group] = MergeProfiles(current.profiles.at(group));
  }
  RollUp(&c);
  return c;
}

namespace {

// JSON numbers must be finite: an infinite change (a zero baseline) is written as a string.
Json Num(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? Json("nan") : Json(v > 0 ? "+inf" : "-inf");
}

Json Values(const std::vector<double>& v) {
  Json a = Json::MakeArray();
  for (double x : v) a.Push(Num(x));
  return a;
}

Json JudgementToJson(const Judgement& j, const std::vector<double>& base,
                     const std::vector<double>& cur) {
  Json o = Json::MakeObject();
  o["baseline"] = Json(Json::Object{
      {"n", j.n_baseline}, {"median", Num(j.baseline_median)}, {"values", Values(base)}});
  o["current"] = Json(
      Json::Object{{"n", j.n_current}, {"median", Num(j.current_median)}, {"values", Values(cur)}});
  o["change"] = Num(j.change.change);
  o["ci"] = Json(Json::Array{Num(j.change.lo), Num(j.change.hi)});
  o["ci_level"] = j.change.level;
  o["u"] = j.test.u;
  o["p"] = Num(j.p);
  o["p_method"] = j.test.method;
  o["verdict"] = j.verdict;
  o["reason"] = j.reason;
  return o;
}

Json SideToJson(const Side& s) {
  Json o = Json::MakeObject();
  o["spec"] = s.spec;
  o["kind"] = s.profile_set ? "profiles" : "runs";
  Json runs = Json::MakeArray();
  for (const RunManifest& r : s.runs) {
    runs.Push(Json(Json::Object{{"dir", r.dir},
                                {"started_at", r.started_at},
                                {"host", r.host},
                                {"label", r.label},
                                {"revision", r.revision},
                                {"config_hash", r.config_hash}}));
  }
  o["runs"] = std::move(runs);
  Json files = Json::MakeObject();
  for (const auto& [group, paths] : s.profile_files) {
    Json a = Json::MakeArray();
    for (const std::string& p : paths) a.Push(p);
    files[group] = std::move(a);
  }
  o["profiles"] = std::move(files);
  Json notes = Json::MakeArray();
  for (const std::string& n : s.notes) notes.Push(n);
  o["notes"] = std::move(notes);
  return o;
}

}  // namespace

Json ComparisonToJson(const Side& baseline, const Side& current, const Comparison& c) {
  Json j = Json::MakeObject();
  j["format"] = kCompareFormat;
  j["baseline"] = SideToJson(baseline);
  j["current"] = SideToJson(current);
  j["thresholds"] = Json(Json::Object{{"threshold", c.options.threshold},
                                      {"alpha", c.options.alpha},
                                      {"min_function_share_pct", kMinFunctionSharePct}});
  j["methods"] = Json(Json::Object{
      {"test", kTestMethod},
      {"change", kChangeMethod},
      {"functions", kFunctionMethod},
      {"verdict",
       "regression: change worse than the threshold and p < alpha; improvement: better than "
       "the threshold and p < alpha; inconclusive: too few repetitions for p to reach alpha, or a "
       "change beyond the threshold with p >= alpha (underpowered); a zero baseline median: "
       "the relative change is +-inf and the test and the direction decide"}});
  Json warnings = Json::MakeArray();
  for (const std::string& w : c.warnings) warnings.Push(w);
  j["warnings"] = std::move(warnings);
  Json metrics = Json::MakeArray();
  for (const MetricResult& m : c.metrics) {
    Json o = JudgementToJson(m.judgement, m.baseline, m.current);
    o["name"] = m.metric.name;
    o["group"] = m.metric.group;
    o["unit"] = m.metric.unit;
    o["better"] = m.metric.higher_is_better ? "higher" : "lower";
    o["counter"] = m.metric.counter;
    metrics.Push(std::move(o));
  }
  j["metrics"] = std::move(metrics);
  Json missing = Json::MakeArray();
  for (const auto& [name, side] : c.missing) {
    missing.Push(Json(Json::Object{{"name", name}, {"missing_in", side}}));
  }
  j["missing"] = std::move(missing);
  Json functions = Json::MakeObject();
  for (const auto& [group, rows] : c.functions) {
    Json a = Json::MakeArray();
    for (const FunctionResult& r : rows) {
      Json o = JudgementToJson(r.judgement, r.baseline, r.current);
      o["function"] = r.function;
      o["metric"] = r.metric;
      o["informational"] = r.informational;
      o["baseline_share_pct"] = r.baseline_share_pct;
      o["current_share_pct"] = r.current_share_pct;
      o["delta_points"] = r.delta_points;
      o["p_unadjusted"] = Num(r.raw_p);
      a.Push(std::move(o));
    }
    functions[group] = std::move(a);
  }
  j["functions"] = std::move(functions);
  Json groups = Json::MakeObject();
  for (const auto& [group, v] : c.groups) groups[group] = v;
  j["groups"] = std::move(groups);
  j["verdict"] = c.verdict;
  return j;
}

}  // namespace fs::regression
