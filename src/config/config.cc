#include "src/config/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "src/base/file_util.h"
#include "src/base/flags.h"

namespace fs {
namespace {

class TomlParser {
 public:
  TomlParser(const std::string& text, const std::string& origin) : text_(text), origin_(origin) {}

  StatusOr<TomlDocument> Parse() {
    TomlDocument doc;
    TomlTable* current = &doc.root;
    size_t pos = 0;
    while (pos <= text_.size()) {
      size_t end = text_.find('\n', pos);
      if (end == std::string::npos) end = text_.size();
      line_text_ = text_.substr(pos, end - pos);
      ++line_;
      pos = end + 1;
      i_ = 0;
      SkipWs();
      if (AtEnd() || Peek() == '#') {
        if (end == text_.size()) break;
        continue;
      }
      if (Peek() == '[') {
        bool array = line_text_.compare(i_, 2, "[[") == 0;
        i_ += array ? 2 : 1;
        size_t close = line_text_.find(array ? "]]" : "]", i_);
        if (close == std::string::npos) return Fail("unterminated table header");
        std::string name = Trim(line_text_.substr(i_, close - i_));
        if (!ValidKey(name)) return Fail("bad table name \"" + name + "\"");
        i_ = close + (array ? 2 : 1);
        SkipWs();
        if (!AtEnd() && Peek() != '#') return Fail("unexpected text after table header");
        if (array) {
          auto& vec = doc.table_arrays[name];
          vec.push_back(TomlTable{{}, line_});
          current = &vec.back();
        } else {
          if (doc.tables.count(name)) return Fail("table [" + name + "] defined twice");
          current = &doc.tables[name];
          current->line = line_;
        }
      } else {
        size_t eq = line_text_.find('=', i_);
        if (eq == std::string::npos) return Fail("expected key = value");
        std::string key = Trim(line_text_.substr(i_, eq - i_));
        if (!ValidKey(key)) return Fail("bad key \"" + key + "\"");
        if (current->values.count(key)) return Fail("key \"" + key + "\" given twice");
        i_ = eq + 1;
        auto value = ParseValue();
        if (!value.ok()) return value.status();
        SkipWs();
        if (!AtEnd() && Peek() != '#') return Fail("unexpected text after value");
        current->values[key] = std::move(value).value();
      }
      if (end == text_.size()) break;
    }
    return doc;
  }

 private:
  Status Fail(const std::string& what) const {
    return Err(origin_ + ":" + std::to_string(line_) + ": " + what);
  }
  bool AtEnd() const { return i_ >= line_text_.size(); }
  char Peek() const { return line_text_[i_]; }
  void SkipWs() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\r')) ++i_;
  }
  static std::string Trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r");
    size_t b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
  }
  static bool ValidKey(const std::string& k) {
    if (k.empty()) return false;
    for (char c : k) {
      if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    }
    return true;
  }

  StatusOr<TomlValue> ParseValue() {
    SkipWs();
    if (AtEnd()) return Fail("missing value");
    TomlValue out;
    out.line = line_;
    char c = Peek();
    if (c == '"' || c == '\'') {
      ++i_;
      std::string s;
      while (!AtEnd() && Peek() != c) {
        char ch = line_text_[i_++];
        if (ch == '\\' && c == '"') {
          if (AtEnd()) break;
          char e = line_text_[i_++];
          switch (e) {
            case 'n':
              s += '\n';
              break;
            case 't':
              s += '\t';
              break;
            case '"':
              s += '"';
              break;
            case '\\':
              s += '\\';
              break;
            default:
              return Fail(std::string("unsupported escape \\") + e);
          }
        } else {
          s += ch;
        }
      }
      if (AtEnd()) return Fail("unterminated string");
      ++i_;
      out.v = s;
      return out;
    }
    if (c == '[') {
      ++i_;
      TomlArray arr;
      for (;;) {
        SkipWs();
        if (AtEnd()) return Fail("unterminated array (arrays must fit on one line)");
        if (Peek() == ']') {
          ++i_;
          break;
        }
        auto item = ParseValue();
        if (!item.ok()) return item.status();
        arr.push_back(std::move(item).value());
        SkipWs();
        if (!AtEnd() && Peek() == ',') ++i_;
      }
      out.v = std::move(arr);
      return out;
    }
    size_t start = i_;
    while (!AtEnd() && Peek() != ',' && Peek() != ']' && Peek() != '#' && Peek() != ' ' &&
           Peek() != '\t') {
      ++i_;
    }
    std::string tok = line_text_.substr(start, i_ - start);
    if (tok == "true" || tok == "false") {
      out.v = tok == "true";
      return out;
    }
    std::string digits;
    for (char ch : tok) {
      if (ch != '_') digits += ch;
    }
    char* e = nullptr;
    if (digits.find_first_of(".eE") == std::string::npos) {
      errno = 0;
      long long v = strtoll(digits.c_str(), &e, 10);
      if (!digits.empty() && *e == '\0' && errno == ERANGE) return Fail("integer out of range");
      if (!digits.empty() && *e == '\0') {
        out.v = static_cast<int64_t>(v);
        return out;
      }
    } else {
      double v = strtod(digits.c_str(), &e);
      if (!digits.empty() && *e == '\0') {
        out.v = v;
        return out;
      }
    }
    return Fail("cannot parse value \"" + tok + "\" (strings need quotes)");
  }

  const std::string& text_;
  std::string origin_;
  std::string line_text_;
  size_t i_ = 0;
  int line_ = 0;
};

// Typed readers that name the key and line on a type mismatch.
class TableReader {
 public:
  TableReader(const TomlTable& t, std::string origin, std::string prefix)
      : t_(t), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  Status Int(const std::string& key, int* out) {
    const TomlValue* v = Take(key);
    if (!v) return Status::Ok();
    if (auto* i = std::get_if<int64_t>(&v->v)) {
      if (*i < INT32_MIN || *i > INT32_MAX) {
        return Err(origin_ + ":" + std::to_string(v->line) + ": " + prefix_ + key +
                   " is out of range");
      }
      *out = static_cast<int>(*i);
      return Status::Ok();
    }
    return TypeError(key, *v, "an integer");
  }
  Status Double(const std::string& key, double* out) {
    const TomlValue* v = Take(key);
    if (!v) return Status::Ok();
    if (auto* d = std::get_if<double>(&v->v)) {
      *out = *d;
      return Status::Ok();
    }
    if (auto* i = std::get_if<int64_t>(&v->v)) {
      *out = static_cast<double>(*i);
      return Status::Ok();
    }
    return TypeError(key, *v, "a number");
  }
  Status Bool(const std::string& key, bool* out) {
    const TomlValue* v = Take(key);
    if (!v) return Status::Ok();
    if (auto* b = std::get_if<bool>(&v->v)) {
      *out = *b;
      return Status::Ok();
    }
    return TypeError(key, *v, "true or false");
  }
  Status String(const std::string& key, std::string* out) {
    const TomlValue* v = Take(key);
    if (!v) return Status::Ok();
    if (auto* s = std::get_if<std::string>(&v->v)) {
      *out = *s;
      return Status::Ok();
    }
    return TypeError(key, *v, "a string");
  }
  Status StringArray(const std::string& key, std::vector<std::string>* out) {
    const TomlValue* v = Take(key);
    if (!v) return Status::Ok();
    const auto* arr = std::get_if<TomlArray>(&v->v);
    if (!arr) return TypeError(key, *v, "an array of strings");
    out->clear();
    for (const TomlValue& item : *arr) {
      const auto* s = std::get_if<std::string>(&item.v);
      if (!s) return TypeError(key, *v, "an array of strings");
      out->push_back(*s);
    }
    return Status::Ok();
  }
  // Every key must have been read: anything left over is a typo or an unsupported option.
  Status CheckAllUsed() const {
    for (const auto& [k, v] : t_.values) {
      if (!used_.count(k)) {
        return Err(origin_ + ":" + std::to_string(v.line) + ": unknown key \"" + prefix_ + k +
                   "\"");
      }
    }
    return Status::Ok();
  }
  Status Error(const std::string& key, const std::string& what) const {
    return AtLineOf(key, prefix_ + key + ": " + what);
  }
  // `what` (which names the key itself) at the key's line.
  Status AtLineOf(const std::string& key, const std::string& what) const {
    auto it = t_.values.find(key);
    int line = it == t_.values.end() ? t_.line : it->second.line;
    return Err(origin_ + ":" + std::to_string(line) + ": " + what);
  }

 private:
  const TomlValue* Take(const std::string& key) {
    auto it = t_.values.find(key);
    if (it == t_.values.end()) return nullptr;
    used_.insert(key);
    return &it->second;
  }
  Status TypeError(const std::string& key, const TomlValue& v, const char* want) const {
    return Err(origin_ + ":" + std::to_string(v.line) + ": " + prefix_ + key + " must be " + want);
  }

  const TomlTable& t_;
  std::string origin_;
  std::string prefix_;
  std::set<std::string> used_;
};

}  // namespace

std::string RedactUrl(const std::string& url) {
  std::string out = url;
  // password=... as a URL query parameter or a key=value conninfo keyword.
  for (size_t p = 0; (p = out.find("password=", p)) != std::string::npos;) {
    size_t start = p + 9;
    bool keyword = p == 0 || out[p - 1] == ' ' || out[p - 1] == '?' || out[p - 1] == '&';
    if (!keyword) {
      p = start;
      continue;
    }
    size_t end = start;
    if (end < out.size() && out[end] == '\'') {  // quoted value, backslash escapes
      for (++end; end < out.size() && out[end] != '\''; ++end) {
        if (out[end] == '\\') ++end;
      }
      end = std::min(end + 1, out.size());
    } else {
      end = out.find_first_of(" &#", start);
      if (end == std::string::npos) end = out.size();
    }
    out.replace(start, end - start, "***");
    p = start + 3;
  }
  size_t scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  size_t auth_start = scheme + 3;
  size_t auth_end = out.find_first_of("/?#", auth_start);
  if (auth_end == std::string::npos) auth_end = out.size();
  size_t at = out.rfind('@', auth_end);
  if (at == std::string::npos || at < auth_start) return out;
  size_t colon = out.find(':', auth_start);
  if (colon == std::string::npos || colon > at) return out;  // user only, no password
  return out.substr(0, colon + 1) + "***" + out.substr(at);
}

std::string CameraName(int index) {
  char buf[16];
  snprintf(buf, sizeof(buf), "cam%02d", index);
  return buf;
}

StatusOr<std::vector<std::string>> ParseHeapProfile(const std::vector<std::string>& names,
                                                    const std::string& setting) {
  std::set<std::string> known(std::begin(kHeapProfileServices), std::end(kHeapProfileServices));
  std::set<std::string> out;
  for (const std::string& n : names) {
    if (n == "all") {
      out = known;
    } else if (known.count(n)) {
      out.insert(n);
    } else {
      std::string valid;
      for (const char* k : kHeapProfileServices)
        valid += std::string(valid.empty() ? "" : ", ") + k;
      return Err(setting + ": unknown service \"" + n + "\" (one of " + valid +
                 ", or all; redis, postgres and prometheus cannot be heap-profiled)");
    }
  }
  return std::vector<std::string>(out.begin(), out.end());
}

bool HeapProfiled(const SystemConfig& config, const std::string& service) {
  // aggregation-2, aggregation-3 ...: the scale-out processes of "aggregation".
  std::string base = service.rfind("aggregation-", 0) == 0 ? "aggregation" : service;
  return std::find(config.heap_profile.begin(), config.heap_profile.end(), base) !=
         config.heap_profile.end();
}

StatusOr<TomlDocument> ParseToml(const std::string& text, const std::string& origin) {
  return TomlParser(text, origin).Parse();
}

Status ApplyConfigToml(const TomlDocument& doc, const std::string& origin, SystemConfig* c) {
  TableReader root(doc.root, origin, "");
  RETURN_IF_ERROR(root.Int("cameras", &c->cameras));
  RETURN_IF_ERROR(root.Double("fps", &c->fps));
  std::string resolution;
  RETURN_IF_ERROR(root.String("resolution", &resolution));
  if (!resolution.empty()) {
    Status st = ParseResolution(resolution, &c->width, &c->height);
    if (!st.ok()) return root.Error("resolution", st.message());
  }
  std::vector<std::string> heap;
  RETURN_IF_ERROR(root.StringArray("heap_profile", &heap));
  if (!heap.empty()) {
    auto parsed = ParseHeapProfile(heap, "heap_profile");
    if (!parsed.ok()) return root.AtLineOf("heap_profile", parsed.status().message());
    c->heap_profile = *parsed;
  }
  RETURN_IF_ERROR(root.CheckAllUsed());

  for (const auto& [name, table] : doc.tables) {
    TableReader r(table, origin, name + ".");
    if (name == "detection") {
      RETURN_IF_ERROR(r.String("model", &c->model));
      RETURN_IF_ERROR(r.String("weights", &c->weights));
      RETURN_IF_ERROR(r.Int("max_batch", &c->max_batch));
      RETURN_IF_ERROR(r.Int("max_wait_ms", &c->max_wait_ms));
      RETURN_IF_ERROR(r.Int("input_size", &c->input_size));
      RETURN_IF_ERROR(r.Double("conf_threshold", &c->conf_threshold));
    } else if (name == "redis") {
      RETURN_IF_ERROR(r.String("url", &c->redis_url));
    } else if (name == "postgres") {
      RETURN_IF_ERROR(r.String("url", &c->postgres_url));
    } else if (name == "aggregation") {
      RETURN_IF_ERROR(r.Int("processes", &c->aggregation_processes));
      RETURN_IF_ERROR(r.Int("batch", &c->aggregation_batch));
    } else if (name == "api") {
      RETURN_IF_ERROR(r.Int("port", &c->api_port));
      RETURN_IF_ERROR(r.Double("client_rate", &c->api_client_rate));
    } else if (name == "prometheus") {
      RETURN_IF_ERROR(r.Bool("enabled", &c->prometheus));
    } else if (name == "ports") {
      RETURN_IF_ERROR(r.Int("rtsp", &c->rtsp_port));
    } else {
      return Err(origin + ":" + std::to_string(table.line) + ": unknown table [" + name + "]");
    }
    RETURN_IF_ERROR(r.CheckAllUsed());
  }

  for (const auto& [name, tables] : doc.table_arrays) {
    if (name != "camera") {
      int line = tables.empty() ? 0 : tables.front().line;
      return Err(origin + ":" + std::to_string(line) + ": unknown table array [[" + name + "]]");
    }
    c->real_cameras.clear();
    std::map<std::string, int> first_line;  // camera name -> line of its [[camera]]
    for (const auto& t : tables) {
      TableReader r(t, origin, "camera.");
      CameraConfig cam;
      RETURN_IF_ERROR(r.String("name", &cam.name));
      RETURN_IF_ERROR(r.String("url", &cam.url));
      RETURN_IF_ERROR(r.CheckAllUsed());
      if (cam.url.rfind("rtsp://", 0) != 0) {
        return Err(origin + ":" + std::to_string(t.line) +
                   ": [[camera]] needs url = \"rtsp://...\"");
      }
      if (cam.name.empty()) cam.name = CameraName(static_cast<int>(c->real_cameras.size()));
      for (char ch : cam.name) {
        if (!isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
          return Err(origin + ":" + std::to_string(t.line) + ": camera name \"" + cam.name +
                     "\" may only contain letters, digits, _ and -");
        }
      }
      // Names key the rings, metrics and Redis entries: two cameras cannot share one.
      if (auto [it, fresh] = first_line.emplace(cam.name, t.line); !fresh) {
        return Err(origin + ":" + std::to_string(t.line) + ": camera.name \"" + cam.name +
                   "\" is already used by the camera at line " + std::to_string(it->second));
      }
      c->real_cameras.push_back(cam);
    }
  }
  return Status::Ok();
}

Status LoadConfigFile(const std::string& path, SystemConfig* config) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ASSIGN_OR_RETURN(TomlDocument doc, ParseToml(text, path));
  return ApplyConfigToml(doc, path, config);
}

namespace {

struct Setting {
  const char* key;
  std::string value;  // exact, for comparing
  std::string shown;  // redacted, for messages
};

std::string Number(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

// Every setting of `c` by config-file key, in the file's order.
std::vector<Setting> Settings(const SystemConfig& c) {
  std::string cams, cams_shown;
  for (const auto& cam : c.real_cameras) {
    std::string sep = cams.empty() ? "" : ", ";
    cams += sep + cam.name + "=" + cam.url;
    cams_shown += sep + cam.name + "=" + RedactUrl(cam.url);
  }
  auto plain = [](const char* key, std::string v) { return Setting{key, v, v}; };
  auto url = [](const char* key, const std::string& v) { return Setting{key, v, RedactUrl(v)}; };
  std::string heap;
  for (const auto& n : c.heap_profile) heap += (heap.empty() ? "" : ",") + n;
  return {plain("cameras", std::to_string(c.cameras)),
          plain("fps", Number(c.fps)),
          plain("resolution", std::to_string(c.width) + "x" + std::to_string(c.height)),
          Setting{"camera", cams, cams_shown},
          plain("detection.model", c.model),
          plain("detection.weights", c.weights),
          plain("detection.max_batch", std::to_string(c.max_batch)),
          plain("detection.max_wait_ms", std::to_string(c.max_wait_ms)),
          plain("detection.input_size", std::to_string(c.input_size)),
          plain("detection.conf_threshold", Number(c.conf_threshold)),
          url("redis.url", c.redis_url),
          url("postgres.url", c.postgres_url),
          plain("aggregation.processes", std::to_string(c.aggregation_processes)),
          plain("aggregation.batch", std::to_string(c.aggregation_batch)),
          plain("api.port", std::to_string(c.api_port)),
          plain("api.client_rate", Number(c.api_client_rate)),
          plain("prometheus.enabled", c.prometheus ? "true" : "false"),
          plain("ports.rtsp", std::to_string(c.rtsp_port)),
          plain("heap_profile", heap)};
}

}  // namespace

std::vector<SettingChange> CompareConfigs(const SystemConfig& from, const SystemConfig& to) {
  std::vector<Setting> a = Settings(from), b = Settings(to);
  std::vector<SettingChange> changes;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].value == b[i].value) continue;
    auto shown = [](const Setting& s) { return s.shown.empty() ? "\"\"" : s.shown; };
    SettingChange ch{a[i].key, shown(a[i]), shown(b[i])};
    if (ch.from == ch.to) ch.to += " (a different password)";
    changes.push_back(ch);
  }
  return changes;
}

Status ValidateConfig(const SystemConfig& c, const SettingNamer& namer) {
  auto name = [&namer](const std::string& key) { return namer ? namer(key) : key; };
  auto got = [](double v) { return " (got " + Number(v) + ")"; };
  // Written so that NaN fails too.
  auto range = [&](const std::string& key, double v, double lo, double hi) {
    if (v >= lo && v <= hi) return Status::Ok();
    return Err(name(key) + " must be between " + Number(lo) + " and " + Number(hi) + got(v));
  };
  if (c.real_cameras.empty()) {
    RETURN_IF_ERROR(range("cameras", c.cameras, 1, 64));
  }
  RETURN_IF_ERROR(range("fps", c.fps, 1, 120));
  // loadgen's encoder takes a whole frame rate; real cameras deliver whatever they deliver.
  if (c.real_cameras.empty() && c.fps != std::floor(c.fps)) {
    return Err(name("fps") + " must be a whole number for the simulated cameras" + got(c.fps));
  }
  RETURN_IF_ERROR(range("detection.max_batch", c.max_batch, 1, 64));
  RETURN_IF_ERROR(range("detection.max_wait_ms", c.max_wait_ms, 0, 1000));
  if (c.input_size < 32 || c.input_size > 1600 || c.input_size % 32 != 0) {
    return Err(name("detection.input_size") + " must be a multiple of 32 between 32 and 1600" +
               got(c.input_size));
  }
  if (!(c.conf_threshold > 0 && c.conf_threshold < 1)) {
    return Err(name("detection.conf_threshold") + " must be between 0 and 1, exclusive" +
               got(c.conf_threshold));
  }
  RETURN_IF_ERROR(range("ports.rtsp", c.rtsp_port, 0, 65535));
  RETURN_IF_ERROR(range("api.port", c.api_port, 0, 65535));
  RETURN_IF_ERROR(range("aggregation.processes", c.aggregation_processes, 1, 16));
  RETURN_IF_ERROR(range("aggregation.batch", c.aggregation_batch, 1, 100000));
  RETURN_IF_ERROR(ParseHeapProfile(c.heap_profile, name("heap_profile")).status());
  return range("api.client_rate", c.api_client_rate, 0, 10000);
}

}  // namespace fs
