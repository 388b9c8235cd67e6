// The baseline document (docs/performance-baseline.md by `make run`): each analyser owns one
// section between its begin/end markers; a run replaces the sections it measured and keeps the
// rest of the document (other sections, the reader's own text).
#ifndef FRAMESCOPE_SESSION_BASELINE_DOC_H_
#define FRAMESCOPE_SESSION_BASELINE_DOC_H_

#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::profile {

// One section of the baseline document: its markers and its new text.
struct BaselineSection {
  const char* begin;
  const char* end;
  std::string text;
  // Placed before every other framescope section (the checklist: the map before the detail);
  // else a section new to the document is appended.
  bool first = false;
};

// Replaces our sections and keeps the rest; an existing document that cannot be read is left
// alone rather than replaced by our sections alone.
Status WriteBaseline(const std::string& path, const std::vector<BaselineSection>& sections);

}  // namespace fs::profile

#endif  // FRAMESCOPE_SESSION_BASELINE_DOC_H_
