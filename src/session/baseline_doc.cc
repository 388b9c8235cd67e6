#include "src/session/baseline_doc.h"

#include <cstring>

#include "src/base/file_util.h"
#include "src/base/output.h"
#include "src/report/cpu_report.h"

namespace fs::profile {
namespace {

constexpr const char* kAnySectionBegin = "<!-- framescope:";

// `doc` with `s` removed from wherever it was and put before the first framescope section
// (after the title and any text of the reader's above it); at the end when there is none.
std::string PutSectionFirst(const std::string& doc, const BaselineSection& s) {
  std::string rest = doc;
  const size_t b = rest.find(s.begin);
  const size_t e = b == std::string::npos ? std::string::npos : rest.find(s.end, b);
  if (b != std::string::npos && e != std::string::npos) {
    size_t after = e + strlen(s.end);
    while (after < rest.size() && rest[after] == '\n') ++after;
    rest.erase(b, after - b);
  }
  const size_t at = rest.find(kAnySectionBegin);
  if (at == std::string::npos) return ReplaceSection(rest, s.begin, s.end, s.text);
  return rest.substr(0, at) + s.text + "\n" + rest.substr(at);
}

}  // namespace

Status WriteBaseline(const std::string& path, const std::vector<BaselineSection>& sections) {
  std::string doc;
  if (KindOfOutput(path) == OutputKind::kFile && PathExists(path)) {
    auto text = ReadFile(path);
    if (!text.ok()) return text.status().Annotate("baseline not updated");
    doc = std::move(*text);
  }
  for (const BaselineSection& s : sections) {
    doc = s.first ? PutSectionFirst(doc, s) : ReplaceSection(doc, s.begin, s.end, s.text);
  }
  return WriteOutput(path, doc);
}

}  // namespace fs::profile
