// A layer on the roofline of the measured machine (Williams, Waterman, Patterson 2009):
// attainable FLOP/s = min(compute roof, memory roof x arithmetic intensity).
//
// Which roofs: a layer that ran on N threads (OpenCV's setNumThreads / getNumThreads) is compared
// with the peak N threads can reach, taken as the measured single-thread peak x N capped by the
// measured all-core peak, for compute and bandwidth alike. The cap matters twice: asking for more
// threads than CPUs gains nothing, and N cores together rarely reach N x one core (shared memory
// bandwidth, clock limits). The compute roof is the FMA kernel's (the ceiling) unless the caller
// asks for the GEMM kernel's (what blocked GEMM-like code such as OpenCV's convolutions achieves).
#ifndef FRAMESCOPE_MODEL_ROOFLINE_H_
#define FRAMESCOPE_MODEL_ROOFLINE_H_

#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/model/machine_peak.h"

namespace fs::model {

enum class ComputeRoof { kFma, kGemm };

struct Roofs {
  double flops_per_s = 0;  // compute roof
  double bytes_per_s = 0;  // memory roof (triad bytes, STREAM's counting)
  int threads = 0;
  std::string basis;  // how each roof was chosen, with the numbers

  Json ToJson() const;
};

// Errors: threads < 1, or a peak whose counters were not measured (best <= 0).
StatusOr<Roofs> RoofsForThreads(const MachinePeak& peak, int threads,
                                ComputeRoof roof = ComputeRoof::kFma);

// One layer's work, as the caller counts it.
struct LayerWork {
  double flops = 0;    // arithmetic, FMA = 2
  double bytes = 0;    // weights + input + output blobs
  double seconds = 0;  // measured time (e.g. the median per forward pass)
};

// Each value is nullopt when it cannot be computed, and `reasons` then says why (one line each);
// nothing is ever divided by zero and no missing value is shown as 0.
struct RooflinePoint {
  std::optional<double> achieved_flops_per_s;    // flops / seconds
  std::optional<double> achieved_bytes_per_s;    // bytes / seconds
  std::optional<double> intensity;               // flops / bytes (FLOP per byte)
  std::optional<double> ridge_intensity;         // compute roof / memory roof
  std::optional<std::string> bound;              // "compute" when intensity >= ridge, else "memory"
  std::optional<double> attainable_flops_per_s;  // min(compute roof, memory roof x intensity)
  std::optional<double> share_of_peak;           // achieved FLOP/s / compute roof
  std::optional<double> share_of_attainable;     // achieved FLOP/s / attainable FLOP/s
  std::optional<double> share_of_bandwidth;      // achieved bytes/s / memory roof
  std::vector<std::string> reasons;

  // The fields above under the same names (null when absent; the two intensities end in
  // _flop_per_byte) and "reasons".
  Json ToJson() const;
};

// A layer with 0 FLOPs but bytes (a concat, a reshape) is "memory" bound with intensity 0; its
// share_of_attainable is null (attainable is 0) and share_of_bandwidth tells how close it runs.
RooflinePoint PlaceOnRoofline(const LayerWork& work, const Roofs& roofs);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_ROOFLINE_H_
