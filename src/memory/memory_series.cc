#include "src/memory/memory_series.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/procfs.h"

namespace fs::profile {
namespace {

// "Name:   1234 kB" -> 1234 * 1024. False for another shape.
bool ParseKbLine(const std::string& line, std::string* key, uint64_t* bytes) {
  size_t colon = line.find(':');
  if (colon == std::string::npos) return false;
  const char* p = line.c_str() + colon + 1;
  char* end = nullptr;
  errno = 0;
  unsigned long long kb = std::strtoull(p, &end, 10);
  if (end == p || errno != 0 || std::strstr(end, "kB") == nullptr) return false;
  *key = line.substr(0, colon);
  *bytes = static_cast<uint64_t>(kb) * 1024;
  return true;
}

// Reads /proc/PID/smaps_rollup; false when the process is gone (or is a kernel thread).
bool ReadOne(pid_t pid, MemoryCounters* out) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/smaps_rollup");
  return text.ok() && ParseSmapsRollup(*text, out);
}

void AddCounters(const MemoryCounters& a, MemoryCounters* sum) {
  sum->rss += a.rss;
  sum->pss += a.pss;
  sum->anon += a.anon;
  sum->file += a.file;
  sum->swap += a.swap;
}

}  // namespace

bool ParseSmapsRollup(const std::string& text, MemoryCounters* out) {
  MemoryCounters c;
  bool have_rss = false, have_anon = false;
  std::istringstream in(text);
  std::string line, key;
  uint64_t v = 0;
  while (std::getline(in, line)) {
    if (!ParseKbLine(line, &key, &v)) continue;  // the header line (address range) has no kB
    if (key == "Rss") c.rss = v, have_rss = true;
    if (key == "Pss") c.pss = v;
    if (key == "Anonymous") c.anon = v, have_anon = true;
    if (key == "Swap") c.swap = v;
  }
  if (!have_rss || !have_anon) return false;
  // Anonymous <= Rss always holds in the kernel's sums; clamp anyway rather than wrap.
  c.file = c.rss > c.anon ? c.rss - c.anon : 0;
  *out = c;
  return true;
}

StatusOr<MemorySample> ReadProcessTreeMemory(pid_t root, const std::string& name) {
  MemorySample s;
  s.name = name;
  s.time_s = static_cast<double>(WallNs()) / 1e9;
  for (pid_t pid : ProcessTree(root)) {
    MemoryCounters c;
    if (!ReadOne(pid, &c)) {
      if (pid == root) {
        return Err("cannot read /proc/" + std::to_string(pid) +
                   "/smaps_rollup: the process is gone or not readable (needs the same user or "
                   "root)");
      }
      continue;  // a child that exited between listing and reading
    }
    s.pids.push_back(pid);
    AddCounters(c, &s.bytes);
  }
  if (s.pids.empty()) return Err("process " + std::to_string(root) + " is gone");
  return s;
}

Json SampleToJson(const MemorySample& s) {
  Json j = Json::MakeObject();
  j["t"] = s.time_s;
  j["name"] = s.name;
  Json pids = Json::MakeArray();
  for (pid_t p : s.pids) pids.Push(Json(static_cast<int64_t>(p)));
  j["pids"] = pids;
  j["rss"] = s.bytes.rss;
  j["pss"] = s.bytes.pss;
  j["anon"] = s.bytes.anon;
  j["file"] = s.bytes.file;
  j["swap"] = s.bytes.swap;
  return j;
}

bool SampleFromJson(const Json& j, MemorySample* out) {
  if (!j.is_object() || !j.Get("t").is_number() || !j.Get("rss").is_number()) return false;
  auto bytes = [&](const char* key) -> uint64_t {
    double v = j.Get(key).AsDouble(0);
    return v > 0 && v < 1.8e19 ? static_cast<uint64_t>(v) : 0;
  };
  MemorySample s;
  s.time_s = j.Get("t").AsDouble();
  if (!(s.time_s == s.time_s) || j.Get("rss").AsDouble() < 0) return false;  // NaN, negative
  s.name = j.Get("name").AsString();
  if (j.Get("pids").is_array()) {
    for (const Json& p : j.Get("pids").AsArray()) s.pids.push_back(static_cast<pid_t>(p.AsInt()));
  }
  s.bytes = {bytes("rss"), bytes("pss"), bytes("anon"), bytes("file"), bytes("swap")};
  *out = std::move(s);
  return true;
}

StatusOr<MemoryLog> MemoryLog::Open(const std::string& path) {
  // Read-write only to read the last byte back below.
  auto opened = OpenRegularFileForUpdate(path, O_APPEND);
  if (!opened.ok()) {
    return opened.status().Annotate("cannot open memory log " + path +
                                    " (remove it or pick another --out)");
  }
  ScopedFd owned(*opened);
  const int fd = *opened;
  MemoryLog log(std::move(owned), path);
  const off_t size = lseek(fd, 0, SEEK_END);
  char last = '\n';
  if (size > 0 && pread(fd, &last, 1, size - 1) != 1) last = '\n';
  if (last != '\n' && write(fd, "\n", 1) != 1) {
    return Err("cannot write memory log " + path + ": " + std::strerror(errno));
  }
  return log;
}

Status MemoryLog::Append(const MemorySample& s) {
  std::string line = SampleToJson(s).Dump() + "\n";
  // One write() with O_APPEND: the line lands whole at the end or (crash, full disk) is cut.
  ssize_t n = write(fd_.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    return Err("cannot append to memory log " + path_ + ": " +
               (n < 0 ? std::strerror(errno) : "short write (disk full?)"));
  }
  return Status::Ok();
}

LoadedLog ParseMemoryLog(const std::string& text) {
  LoadedLog out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = Json::Parse(line);
    MemorySample s;
    if (j.ok() && SampleFromJson(*j, &s)) {
      out.samples.push_back(std::move(s));
    } else {
      ++out.corrupt_lines;
    }
  }
  return out;
}

StatusOr<LoadedLog> LoadMemoryLog(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseMemoryLog(text);
}

std::vector<MemorySample> SamplesNamed(const std::vector<MemorySample>& all,
                                       const std::string& name, pid_t root_pid) {
  std::vector<MemorySample> out;
  for (const MemorySample& s : all) {
    bool same_process = root_pid <= 0 || (!s.pids.empty() && s.pids.front() == root_pid);
    if (s.name == name && same_process) out.push_back(s);
  }
  return out;
}

}  // namespace fs::profile
