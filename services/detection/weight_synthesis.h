// Synthesized darknet weights that make a real architecture runnable without downloads.
//
// THE DETECTIONS THEY PRODUCE ARE MEANINGLESS. They exist so the pipeline can be run,
// profiled and tested end to end on this machine: the compute profile (layers, shapes,
// FLOPs, memory traffic) is exactly the real architecture's, because only the numbers in
// the .weights file are invented. Pass a trained file with --weights for real detections.
//
// How the numbers are chosen (all deterministic: same cfg + seed -> byte-identical file):
//  1. SynthesizeDarknetWeights() (darknet_weights.h): He-style random convolutions from
//     splitmix64, scaled by a mean-field estimate so activations stay O(1) in every layer.
//  2. CalibrateYoloHeads(): one OpenCV forward pass over a few procedurally generated
//     "photo-like" images (gradients, value noise, coloured shapes: no files needed) reads
//     the raw output of each conv feeding a [yolo] head, and rescales that conv per channel:
//     box x/y offsets ~N(0,1) logits, box w/h ~ anchor * exp(N(0, 0.3)), class logits biased
//     so one class per box is confident, and objectness biased so that about
//     `boxes_per_head` boxes per image per head score above `score_threshold`. On real
//     photographs this gives a handful of boxes per frame after NMS (see the test and
//     docs). Calibration statistics are rounded to a coarse grid before use, so the tiny
//     float differences between CPUs (AVX2 vs AVX-512 kernels) do not change the bytes.
#ifndef FRAMESCOPE_SERVICES_DETECTION_WEIGHT_SYNTHESIS_H_
#define FRAMESCOPE_SERVICES_DETECTION_WEIGHT_SYNTHESIS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "services/detection/darknet_cfg.h"
#include "services/detection/darknet_weights.h"
#include "src/base/status.h"

namespace fs {

struct SynthesisOptions {
  uint64_t seed = 1;
  // Target number of boxes per calibration image and [yolo] head above score_threshold,
  // before NMS.
  double boxes_per_head = 2.5;
  float score_threshold = 0.25f;
};

// Bumped whenever the synthesis algorithm changes, so cached files are regenerated.
inline constexpr int kSynthesisVersion = 1;

// The `seen` header value that tags a file synthesized from `cfg_text` with `seed` by this
// version of the code (a hash; real trained files hold their training image count there).
uint64_t SynthesisTag(const std::string& cfg_text, uint64_t seed);

// A deterministic BGR test image (width*height*3 bytes, row-major) with photo-like
// statistics, used for calibration. Exposed for tests.
std::vector<uint8_t> MakeCalibrationImage(uint64_t seed, int width, int height);

// Step 2 above, in place. `cfg_text` must be the text `model` was parsed from (OpenCV
// reads it again). Fails if a [yolo] head is not directly preceded by a [convolutional].
Status CalibrateYoloHeads(const std::string& cfg_text, const DarknetModel& model,
                          const SynthesisOptions& options, DarknetWeights* weights);

// Steps 1 + 2: the complete .weights file contents.
StatusOr<std::string> SynthesizeWeightsFile(const std::string& cfg_text, const DarknetModel& model,
                                            const SynthesisOptions& options);

// "<cache_dir>/<cfg file stem>-synth-<seed>.weights" (e.g. yolov3-tiny-synth-1.weights).
std::string SynthesizedWeightsPath(const std::string& cfg_path, const std::string& cache_dir,
                                   uint64_t seed);

// Returns SynthesizedWeightsPath(), synthesizing it first (atomically: temp + rename) unless
// a file with the right size and tag is already there. Safe against concurrent callers:
// both write identical bytes and rename() is atomic.
StatusOr<std::string> EnsureSynthesizedWeights(const std::string& cfg_path,
                                               const std::string& cache_dir, uint64_t seed);

// $FRAMESCOPE_CACHE_DIR/weights, else $XDG_CACHE_HOME/framescope/weights, else
// $HOME/.cache/framescope/weights, else /tmp/framescope-cache/weights.
std::string DefaultWeightsCacheDir();

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_WEIGHT_SYNTHESIS_H_
