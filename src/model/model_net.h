// A detection model loaded with OpenCV DNN (backend OPENCV, target CPU), as the detection
// service loads it, for profiling: the per-layer profile and the batch sweep both time forward
// passes of a ModelNet on a fixed synthetic input.
//
// Weights: a darknet .cfg is loaded with the .weights file given (the detection service's own,
// found through the state dir, when profiling the running system). Without one, the weights are
// zero-filled: OpenCV's CPU kernels do the same arithmetic whatever the values, so the timings
// are the model's; the outputs mean nothing, which the profile says.
#ifndef FRAMESCOPE_MODEL_MODEL_NET_H_
#define FRAMESCOPE_MODEL_MODEL_NET_H_

#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::model {

struct ModelSpec {
  std::string model_path;    // darknet .cfg or .onnx
  std::string weights_path;  // darknet: .weights; empty: zero-filled
  int input_width = 0;       // 0: the cfg's [net] width (416 for ONNX)
  int input_height = 0;      // 0: the cfg's [net] height (416 for ONNX)
  int threads = 0;           // cv::setNumThreads; 0: OpenCV's default
};

// One OpenCV layer, in network order (index i of getPerfProfile's timings).
struct LayerInfo {
  int id = 0;  // OpenCV layer id (getLayerId(name))
  std::string name;
  std::string type;
  std::vector<int> output_shape;    // first output, N x C x H x W for convolutions
  std::vector<std::string> inputs;  // names of the layers feeding it
  int64_t flops = 0;                // OpenCV's getFLOPS for this layer at this batch size
  int64_t weight_bytes = 0;         // getMemoryConsumption: parameters
  int64_t blob_bytes = 0;           // getMemoryConsumption: output blobs
  int64_t input_bytes = 0;          // the inputs' output blobs
};

class ModelNet {
 public:
  static StatusOr<ModelNet> Load(const ModelSpec& spec);

  // One timed forward pass over `batch` copies of a fixed random image; wall seconds of
  // net.forward() alone. The first call at a new batch size also reshapes the net.
  StatusOr<double> Forward(int batch);
  // Per-layer ticks of the most recent Forward (getPerfProfile), in seconds, by layer index.
  std::vector<double> LastLayerSeconds() const;
  // The layers, with shapes, FLOPs and bytes at `batch`.
  StatusOr<std::vector<LayerInfo>> Layers(int batch) const;

  const ModelSpec& spec() const { return spec_; }
  int input_width() const { return spec_.input_width; }
  int input_height() const { return spec_.input_height; }
  int threads() const;
  bool zero_weights() const { return zero_weights_; }
  std::string format() const { return format_; }  // "darknet" or "onnx"

 private:
  ModelNet() = default;
  Status SetBatch(int batch);

  ModelSpec spec_;
  std::string format_;
  bool zero_weights_ = false;
  mutable cv::dnn::Net net_;
  std::vector<std::string> outputs_;
  cv::Mat input_;
  int batch_ = 0;
};

// "1x3x416x416" for messages and JSON.
std::string ShapeText(const std::vector<int>& shape);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_MODEL_NET_H_
