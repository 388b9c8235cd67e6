// Darknet .weights files: layout, validation against a cfg, and deterministic synthesis.
//
// File layout (little-endian, as darknet writes it on x86):
//   int32 major, int32 minor, int32 revision,
//   `seen` (images seen in training): uint64 when major*10+minor >= 2, else uint32;
//   then for each [convolutional] layer in cfg order:
//     float biases[filters];
//     if batch_normalize: float scales[filters], rolling_mean[filters],
//                         rolling_variance[filters];
//     float weights[filters * in_channels/groups * size * size].
// No other supported layer type stores parameters, so the file size is fixed by the cfg:
// header + 4 * DarknetModel::TotalParams() bytes.
//
// Synthesis exists because no pretrained weights can be downloaded here: the synthesized
// numbers give the real architecture's compute profile but MEANINGLESS detections.
#ifndef FRAMESCOPE_SERVICES_DETECTION_DARKNET_WEIGHTS_H_
#define FRAMESCOPE_SERVICES_DETECTION_DARKNET_WEIGHTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "services/detection/darknet_cfg.h"
#include "src/base/status.h"

namespace fs {

struct DarknetWeightsHeader {
  int32_t major = 0;
  int32_t minor = 2;
  int32_t revision = 0;
  uint64_t seen = 0;
  // 20 bytes for the 64-bit `seen` (major*10+minor >= 2), else 16.
  int64_t size_bytes() const { return major * 10 + minor >= 2 ? 20 : 16; }
};

// Parameters of one [convolutional] layer, in file order. `scales`, `rolling_mean` and
// `rolling_variance` are empty unless the layer has batch_normalize=1.
struct ConvWeights {
  int layer = 0;  // darknet layer index
  std::vector<float> biases;
  std::vector<float> scales;
  std::vector<float> rolling_mean;
  std::vector<float> rolling_variance;
  std::vector<float> weights;  // [filters][in_c/groups][size][size]
};

struct DarknetWeights {
  DarknetWeightsHeader header;
  std::vector<ConvWeights> convs;  // one per [convolutional], in cfg order
};

// Exact file size a .weights file for `model` must have with this header.
int64_t ExpectedWeightsBytes(const DarknetModel& model, const DarknetWeightsHeader& header);

// Reads the header from the first bytes of a .weights file.
StatusOr<DarknetWeightsHeader> ParseWeightsHeader(const std::string& bytes,
                                                  const std::string& origin);

// Reads just the header of the .weights file at `path`.
StatusOr<DarknetWeightsHeader> ReadWeightsHeader(const std::string& path);

// Checks that `path` exists and has exactly the size `model` implies. Errors say which
// (missing / too short / too long), by how many bytes and parameters, and what to do.
Status ValidateWeightsFile(const std::string& path, const DarknetModel& model);

// Serialises header + all conv parameters. CHECK-fails when a layer's vectors do not match
// `model` (a programming error, not user input).
std::string EncodeDarknetWeights(const DarknetModel& model, const DarknetWeights& weights);

// splitmix64: a tiny, fully specified PRNG, so synthesized files are byte-identical on every
// platform for the same seed (no std:: distribution, whose output is implementation-defined).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Approximately standard normal: Irwin-Hall sum of 4 uniforms, rescaled to unit variance.
  // Pure arithmetic (no libm), so bit-identical everywhere; tails end at +-3.46.
  double Normal() {
    double s = Uniform() + Uniform() + Uniform() + Uniform();
    return (s - 2.0) * 1.7320508075688772;  // sqrt(12/4)
  }

 private:
  uint64_t state_;
};

// Deterministic initialisation of every [convolutional] layer of `model`: weights
// N(0, 1/fan_in) from splitmix64, and a mean-field pass (per-channel mean and variance
// propagated through convs, activations, maxpool, route and shortcut) that sets each batch
// norm's rolling mean/variance so its output is centred with unit variance (convs without
// batch norm get a centring bias instead). Activations thus stay O(1) at any depth (yolov3's
// 23 shortcuts included), and centred features keep zero padding from dominating the
// borders. The batch-normalized conv feeding each [yolo] head conv is built from channel
// pairs that the head reads as clamp(z, 0, delta), so head logits saturate instead of
// growing with image contrast (the box count per frame then varies little between smooth
// and busy scenes). The convs feeding [yolo] heads are finished by CalibrateYoloHeads()
// (weight_synthesis.h), which measures their real output statistics.
DarknetWeights SynthesizeDarknetWeights(const DarknetModel& model, uint64_t seed);

// 64-bit FNV-1a, used to tag synthesized files (stored in the header's `seen`).
uint64_t Fnv1a64(const std::string& data, uint64_t hash = 0xcbf29ce484222325ull);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_DARKNET_WEIGHTS_H_
