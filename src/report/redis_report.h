// The Redis part of the reports (src/io/redis_window.h's analysis, rendered): the "Redis"
// section of index.html, the baseline document's Redis section (its own markers) and the
// terminal tables of `framescope redis`. All three come from the same rows (RedisTables), so
// they cannot disagree. Every number names its counter; "n/a" comes with the reason.
#ifndef FRAMESCOPE_REPORT_REDIS_REPORT_H_
#define FRAMESCOPE_REPORT_REDIS_REPORT_H_

#include <string>
#include <vector>

#include "src/io/redis_window.h"

namespace fs::profile {

inline constexpr const char* kRedisSectionBegin = "<!-- framescope:redis:begin -->";
inline constexpr const char* kRedisSectionEnd = "<!-- framescope:redis:end -->";

// One table of the section: rows of text cells under a header; `empty` when there are no rows.
struct RedisTable {
  std::string id;  // HTML id
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string empty;
};

// The sentences before the tables: the window, a restart, the verdict with its counters, the
// services not measured and why the two measures disagree.
std::vector<std::string> RedisSummaryLines(const io::RedisAnalysis& a);
// Client pipelining per (source, op) and per source, the two measures side by side, per
// command, the new slow log entries, memory and keyspace.
std::vector<RedisTable> RedisTables(const io::RedisAnalysis& a);

// `json_path`: redis_analysis.json relative to the report.
std::string RenderRedisHtml(const io::RedisAnalysis& a, const std::string& json_path);
// Markdown between kRedisSectionBegin/End.
std::string RenderBaselineRedisSection(const io::RedisAnalysis& a, const std::string& json_path);
// Plain text with aligned columns, for the terminal.
std::string RenderRedisText(const io::RedisAnalysis& a);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_REDIS_REPORT_H_
