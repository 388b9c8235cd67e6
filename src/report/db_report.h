// The database part of the reports (src/io's DbAnalysis, rendered): the "PostgreSQL" section of
// index.html and of the baseline document (its own markers), and `framescope db`'s terminal
// table. Statements with their windowed pg_stat_statements numbers, the slow ones with plan
// cost and HypoPG advice, verified index trials, sequential scans, unused indexes and the
// checklist 3.1 verdict with its reason.
#ifndef FRAMESCOPE_REPORT_DB_REPORT_H_
#define FRAMESCOPE_REPORT_DB_REPORT_H_

#include <string>

#include "src/io/db_window.h"

namespace fs::profile {

inline constexpr const char* kDbSectionBegin = "<!-- framescope:db:begin -->";
inline constexpr const char* kDbSectionEnd = "<!-- framescope:db:end -->";

// The <h2 id="db"> section of index.html. `json_path`: db_analysis.json relative to it.
std::string RenderDbHtml(const io::DbAnalysis& a, const std::string& json_path);
// The "## PostgreSQL" section of the baseline document, between kDbSectionBegin/End.
std::string RenderBaselineDbSection(const io::DbAnalysis& a, const std::string& json_path);
// Plain text for the terminal: the statement table (at most `max_rows`), slow statements with
// advice, trials, sequential scans, unused indexes, notes and the verdict.
std::string RenderDbTerminal(const io::DbAnalysis& a, size_t max_rows = 20);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_DB_REPORT_H_
