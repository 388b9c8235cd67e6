#include "src/session/baseline_doc.h"

#include "src/base/file_util.h"
#include "src/base/output.h"
#include "src/report/cpu_report.h"

namespace fs::profile {

Status WriteBaseline(const std::string& path, const std::vector<BaselineSection>& sections) {
  std::string doc;
  if (KindOfOutput(path) == OutputKind::kFile && PathExists(path)) {
    auto text = ReadFile(path);
    if (!text.ok()) return text.status().Annotate("baseline not updated");
    doc = std::move(*text);
  }
  for (const BaselineSection& s : sections) doc = ReplaceSection(doc, s.begin, s.end, s.text);
  return WriteOutput(path, doc);
}

}  // namespace fs::profile
