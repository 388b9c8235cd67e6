// Darknet .cfg parsing and shape inference, without OpenCV.
//
// A .cfg is INI-like: `[section]` headers, `key=value` lines, full-line comments starting
// with '#' or ';'. Like darknet itself we delete every whitespace character in a line
// before interpreting it ("anchors = 10,14,  23,27" reads as "anchors=10,14,23,27").
//
// ParseDarknetCfg() walks the layers the way darknet's parser does and computes each
// layer's output shape (C,H,W) and parameter count, so that we can (a) tell a user what
// their model looks like, (b) synthesise or validate a .weights file, whose size is fixed
// by the parameter counts, and (c) name the [yolo] heads. Layer types outside the set used
// by yolov3-tiny, yolov3 and yolov4-tiny are rejected with the file:line of the section.
#ifndef FRAMESCOPE_SERVICES_DETECTION_DARKNET_CFG_H_
#define FRAMESCOPE_SERVICES_DETECTION_DARKNET_CFG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

// One `[type]` section and its options, in file order.
struct CfgSection {
  struct Option {
    std::string key;
    std::string value;
    int line = 0;
  };
  std::string type;  // without brackets, e.g. "convolutional"
  int line = 0;      // line of the `[type]` header (1-based)
  std::vector<Option> options;

  // Returns nullptr when absent (the last occurrence wins, as in darknet).
  const Option* Find(const std::string& key) const;
};

// Splits `text` into sections. `origin` (usually the path) prefixes error messages:
// "<origin>:<line>: <what>". Errors: a key=value line before the first section, a line that
// is neither a section header nor key=value, an empty section name.
StatusOr<std::vector<CfgSection>> ParseCfgSections(const std::string& text,
                                                   const std::string& origin);

struct TensorShape {
  int c = 0;
  int h = 0;
  int w = 0;
  int64_t elements() const { return int64_t{c} * h * w; }
  bool operator==(const TensorShape&) const = default;
};

enum class CfgLayerType { kConvolutional, kMaxpool, kUpsample, kRoute, kShortcut, kYolo };
const char* CfgLayerTypeName(CfgLayerType type);

struct CfgLayer {
  int index = 0;  // darknet layer index: 0 is the first section after [net]
  CfgLayerType type = CfgLayerType::kConvolutional;
  int line = 0;  // line of the section header, for messages
  TensorShape output;
  // Parameters stored in a .weights file for this layer, in float32 values. Convolutional:
  // biases (filters) + [batch_normalize: scales, rolling_mean, rolling_variance (3*filters)]
  // + weights (filters * in_c/groups * size * size). Every other supported type: 0.
  int64_t params = 0;
  // Absolute indices of the layers this one reads (previous layer for most types; several
  // for [route]; previous and `from` for [shortcut]).
  std::vector<int> inputs;

  // [convolutional]
  int filters = 0;
  int size = 0;     // kernel size; also [maxpool] size
  int stride = 1;   // also [maxpool] / [upsample] stride
  int padding = 0;  // pixels each side; [maxpool]: total padding as darknet defines it
  int groups = 1;   // also [route] groups
  bool batch_normalize = false;
  std::string activation;  // darknet's default for [convolutional] is "logistic"

  // [route]
  int group_id = 0;

  // [yolo]
  std::vector<int> mask;       // anchor indices this head uses
  std::vector<float> anchors;  // all anchors, as w,h pairs in network-input pixels
  int classes = 0;
};

struct DarknetModel {
  std::string origin;  // path or "<string>"
  TensorShape input;   // from [net] channels, height, width
  std::vector<CfgLayer> layers;

  int64_t TotalParams() const;
  // Indices of the [yolo] layers, in file order.
  std::vector<int> YoloLayers() const;
  // Classes of the first [yolo] head (all heads must agree); 0 when there is none.
  int NumClasses() const;
};

// Parses and shape-checks a whole cfg. Errors name origin:line and the offending key.
// A positive input_width/input_height replaces [net] width/height (as OpenCV does when fed
// a blob of another size), so shape errors such as a [route] joining 25x25 with 26x26 for
// an input that is not a multiple of 32 are reported here rather than by OpenCV.
StatusOr<DarknetModel> ParseDarknetCfg(const std::string& text, const std::string& origin,
                                       int input_width = 0, int input_height = 0);
// Reads the file first; a missing file is an error naming the path.
StatusOr<DarknetModel> LoadDarknetCfg(const std::string& path, int input_width = 0,
                                      int input_height = 0);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_DARKNET_CFG_H_
