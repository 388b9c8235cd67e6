// `framescope compare` rendered: the terminal table (metric, medians, change with its interval,
// p, n, verdict; then the functions whose share changed most, per service) and compare.html
// (the same tables, self-contained, linking each service's differential flame graph).
#ifndef FRAMESCOPE_REPORT_COMPARE_REPORT_H_
#define FRAMESCOPE_REPORT_COMPARE_REPORT_H_

#include <map>
#include <string>

#include "src/regression/compare.h"

namespace fs::profile {

// "+12.3 %" for 0.123; "+inf" for an infinite change.
std::string FormatChange(double change);

// The terminal report; `max_functions` rows per service.
std::string RenderCompareText(const regression::Side& baseline, const regression::Side& current,
                              const regression::Comparison& c, size_t max_functions = 10);

// compare.html. `diff_links`: group -> relative path of its differential flame graph.
std::string RenderCompareHtml(const regression::Side& baseline, const regression::Side& current,
                              const regression::Comparison& c,
                              const std::map<std::string, std::string>& diff_links);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_COMPARE_REPORT_H_
