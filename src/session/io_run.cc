#include "src/session/io_run.h"

#include "src/base/output.h"
#include "src/report/db_report.h"
#include "src/report/edge_graph.h"
#include "src/report/flamegraph.h"
#include "src/report/redis_report.h"
#include "src/session/io_targets.h"

namespace fs::profile {
namespace {

constexpr const char* kDbJson = "io/db_analysis.json";
constexpr const char* kRedisJson = "io/redis_analysis.json";
constexpr const char* kNetJson = "io/network_map.json";
constexpr const char* kNetSvg = "io/network_map.svg";

// Writes OUT/<path> and returns summary.json's object for it: the file and its checklist item.
Json WriteAnalysis(const std::string& out_dir, const char* path, const Json& analysis,
                   std::vector<Status>* written) {
  written->push_back(WriteOutput(out_dir + "/" + path, analysis.Dump(2) + "\n"));
  Json j = Json::MakeObject();
  j["report"] = path;
  j["checklist"] = analysis.Get("checklist");
  return j;
}

}  // namespace

IoWindows::IoWindows() = default;
IoWindows::~IoWindows() = default;

void IoWindows::Begin(const std::string& state_dir, const IoRunOptions& options) {
  auto targets = ResolveIoTargets(state_dir);
  if (!targets.ok()) {
    error_ = targets.status().message();
    return;
  }
  error_.clear();
  io::DbOptions db;
  db.slow_ms = options.slow_ms;
  db.stop = options.stop;
  db_ = std::make_unique<io::DbWindow>(targets->postgres_url, targets->postgres_label, db);
  redis_ = std::make_unique<io::RedisWindow>(targets->redis_url, targets->services);
  net_ = std::make_unique<io::NetWindow>(targets->prometheus_port, targets->services);
  db_->Begin();
  redis_->Begin();
  net_->Begin();
}

void IoWindows::End() {
  if (!error_.empty()) return;
  db_->End();
  redis_->End();
  net_->End();
}

IoResults IoWindows::Analyse() {
  IoResults r;
  r.error = error_;
  if (!error_.empty()) return r;
  r.db = db_->Analyse();
  r.redis = redis_->Analyse();
  r.net = net_->Analyse();
  r.db_json = io::DbAnalysisToJson(*r.db);
  r.redis_json = io::RedisToJson(*r.redis);
  r.net_json = io::NetToJson(*r.net);
  return r;
}

Json WriteIoFiles(const std::string& out_dir, const IoResults& io, std::vector<Status>* written) {
  Json j = Json::MakeObject();
  if (!io.error.empty()) {
    j["error"] = io.error;
    return j;
  }
  j["db"] = WriteAnalysis(out_dir, kDbJson, io.db_json, written);
  j["redis"] = WriteAnalysis(out_dir, kRedisJson, io.redis_json, written);
  j["net"] = WriteAnalysis(out_dir, kNetJson, io.net_json, written);
  written->push_back(WriteOutput(out_dir + "/" + kNetSvg, EdgeGraphSvgFile(*io.net)));
  j["net"]["graph"] = kNetSvg;
  return j;
}

std::vector<BaselineSection> IoBaselineSections(const IoResults& io) {
  if (!io.error.empty()) return {};
  return {{kDbSectionBegin, kDbSectionEnd, RenderBaselineDbSection(*io.db, kDbJson)},
          {kRedisSectionBegin, kRedisSectionEnd, RenderBaselineRedisSection(*io.redis, kRedisJson)},
          {kNetSectionBegin, kNetSectionEnd, RenderBaselineNetSection(*io.net, kNetJson)}};
}

std::string IoHtml(const IoResults& io) {
  if (!io.error.empty()) {
    return "<h2 id=\"io\">Database, Redis and network</h2>\n<p>Not measured: " +
           HtmlEscape(io.error) + "</p>\n";
  }
  return RenderDbHtml(*io.db, kDbJson) + RenderRedisHtml(*io.redis, kRedisJson) +
         RenderNetHtml(*io.net, kNetJson);
}

std::vector<std::string> IoVerdictLines(const IoResults& io) {
  if (!io.error.empty()) return {"io: not measured: " + io.error};
  std::vector<std::string> lines;
  auto line = [&](const char* what, const Json& analysis) {
    const Json& c = analysis.Get("checklist");
    lines.push_back(std::string(what) + ": " + c.Get("verdict").AsString() + " for " +
                    c.Get("item").AsString().substr(0, 3) + ". " + c.Get("reason").AsString());
  };
  line("db", io.db_json);
  line("redis", io.redis_json);
  line("net", io.net_json);
  return lines;
}

}  // namespace fs::profile
