#include "src/regression/run_manifest.h"

#include <cstdio>

#include "src/base/file_util.h"
#include "src/base/hash.h"
#include "src/base/output.h"

namespace fs::regression {
namespace {

Json MetricToJson(const Metric& m) {
  Json j = Json::MakeObject();
  j["name"] = m.name;
  j["group"] = m.group;
  j["unit"] = m.unit;
  j["counter"] = m.counter;
  j["better"] = m.higher_is_better ? "higher" : "lower";
  Json values = Json::MakeArray();
  for (double v : m.values) values.Push(v);
  j["values"] = std::move(values);
  return j;
}

StatusOr<Metric> MetricFromJson(const Json& j, size_t index) {
  Metric m;
  m.name = j.Get("name").AsString();
  const std::string where = "metrics[" + std::to_string(index) + "]";
  if (!j.is_object() || m.name.empty()) return Err(where + " has no name");
  if (!j.Get("values").is_array()) return Err(where + " (" + m.name + ") has no values array");
  m.group = j.Get("group").AsString();
  m.unit = j.Get("unit").AsString();
  m.counter = j.Get("counter").AsString();
  const std::string better = j.Get("better").AsString();
  if (better != "lower" && better != "higher") {
    return Err(where + " (" + m.name + "): better must be \"lower\" or \"higher\"");
  }
  m.higher_is_better = better == "higher";
  for (const Json& v : j.Get("values").AsArray()) {
    if (!v.is_number()) return Err(where + " (" + m.name + ") has a value that is not a number");
    m.values.push_back(v.AsDouble());
  }
  return m;
}

Json RowToJson(const ChecklistRow& r) {
  Json j = Json::MakeObject();
  j["id"] = r.id;
  j["item"] = r.item;
  j["goal"] = r.goal;
  j["value"] = r.value;
  j["counter"] = r.counter;
  j["verdict"] = r.verdict;
  j["reason"] = r.reason;
  return j;
}

ChecklistRow RowFromJson(const Json& j) {
  return {j.Get("id").AsString(),    j.Get("item").AsString(),    j.Get("goal").AsString(),
          j.Get("value").AsString(), j.Get("counter").AsString(), j.Get("verdict").AsString(),
          j.Get("reason").AsString()};
}

}  // namespace

const Metric* RunManifest::Find(const std::string& name) const {
  for (const Metric& m : metrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Json RunManifestToJson(const RunManifest& m) {
  Json j = Json::MakeObject();
  j["format"] = kRunFormat;
  j["status"] = m.status;
  if (!m.error.empty()) j["error"] = m.error;
  j["exit_code"] = m.exit_code;
  j["started_at"] = m.started_at;
  j["finished_at"] = m.finished_at;
  j["host"] = m.host;
  j["duration_s"] = m.duration_s;
  j["repeat"] = m.repeat;
  j["label"] = m.label;
  j["revision"] = m.revision;
  j["framescope_version"] = m.framescope_version;
  j["config"] = m.config;
  j["config_hash"] = m.config_hash;
  j["report"] = m.report;
  Json metrics = Json::MakeArray();
  for (const Metric& metric : m.metrics) metrics.Push(MetricToJson(metric));
  j["metrics"] = std::move(metrics);
  Json profiles = Json::MakeObject();
  for (const auto& [service, path] : m.profiles) profiles[service] = path;
  j["profiles"] = std::move(profiles);
  Json rows = Json::MakeArray();
  for (const ChecklistRow& r : m.checklist) rows.Push(RowToJson(r));
  j["checklist"] = std::move(rows);
  return j;
}

StatusOr<RunManifest> RunManifestFromJson(const Json& j) {
  if (!j.is_object()) return Err("not a JSON object");
  if (j.Get("format").AsString() != kRunFormat) {
    return Err("format is \"" + j.Get("format").AsString() + "\", expected \"" + kRunFormat + "\"");
  }
  RunManifest m;
  m.status = j.Get("status").AsString();
  if (m.status != "ok" && m.status != "failed" && m.status != "interrupted") {
    return Err("status \"" + m.status + "\" is not ok, failed or interrupted");
  }
  if (!j.Get("metrics").is_array()) return Err("no metrics array");
  m.error = j.Get("error").AsString();
  m.exit_code = static_cast<int>(j.Get("exit_code").AsInt());
  m.started_at = j.Get("started_at").AsString();
  m.finished_at = j.Get("finished_at").AsString();
  m.host = j.Get("host").AsString();
  m.duration_s = j.Get("duration_s").AsDouble();
  m.repeat = static_cast<int>(j.Get("repeat").AsInt(1));
  m.label = j.Get("label").AsString();
  m.revision = j.Get("revision").AsString();
  m.framescope_version = j.Get("framescope_version").AsString();
  m.config = j.Get("config");
  m.config_hash = j.Get("config_hash").AsString();
  m.report = j.Get("report").AsString();
  const Json::Array& metrics = j.Get("metrics").AsArray();
  for (size_t i = 0; i < metrics.size(); ++i) {
    ASSIGN_OR_RETURN(Metric metric, MetricFromJson(metrics[i], i));
    m.metrics.push_back(std::move(metric));
  }
  if (j.Get("profiles").is_object()) {
    for (const auto& [service, path] : j.Get("profiles").AsObject()) {
      m.profiles[service] = path.AsString();
    }
  }
  if (j.Get("checklist").is_array()) {
    for (const Json& r : j.Get("checklist").AsArray()) m.checklist.push_back(RowFromJson(r));
  }
  return m;
}

StatusOr<RunManifest> LoadRunManifest(const std::string& dir) {
  const std::string path = dir + "/" + kRunFile;
  auto text = ReadFile(path);
  if (!text.ok()) return Err(path + ": " + text.status().message());
  auto j = Json::Parse(*text);
  if (!j.ok()) return Err(path + ": corrupt: " + j.status().message());
  auto m = RunManifestFromJson(*j);
  if (!m.ok()) return Err(path + ": corrupt: " + m.status().message());
  m->dir = dir;
  return m;
}

Status WriteRunManifest(const std::string& dir, const RunManifest& m) {
  return WriteOutput(dir + "/" + kRunFile, RunManifestToJson(m).Dump(2) + "\n");
}

std::string JsonHash(const Json& j) { return Fnv1aHex(j.Dump()); }

}  // namespace fs::regression
