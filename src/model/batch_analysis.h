// The whole result of `framescope batch` (offline sweep, best batch and verdict, live view) and
// its JSON, profiles/models/batch_analysis.json; the report renders the same struct.
#ifndef FRAMESCOPE_MODEL_BATCH_ANALYSIS_H_
#define FRAMESCOPE_MODEL_BATCH_ANALYSIS_H_

#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/model/batch_live.h"
#include "src/model/batch_sweep.h"

namespace fs::model {

struct BatchAnalysis {
  std::string model_path;
  std::string model_origin;  // the running system's detection model, or --model
  std::string weights_note;
  int input_width = 0, input_height = 0;
  int threads = 0;                // OpenCV threads the forwards ran with
  bool detection_paused = false;  // detection was stopped (SIGSTOP) during the sweep
  bool interrupted = false;       // Ctrl-C: the sweep holds what was measured
  SweepOptions options;
  std::vector<BatchResult> results;
  BatchChoice choice;
  LiveBatchView live;
};

Json BatchAnalysisToJson(const BatchAnalysis& a);
// Reads batch_analysis.json back (for a report built from an earlier `framescope batch` run):
// BatchAnalysisToJson of the result equals the input; an error names what is missing.
StatusOr<BatchAnalysis> BatchAnalysisFromJson(const Json& j);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_BATCH_ANALYSIS_H_
