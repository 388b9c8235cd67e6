// Object detection with OpenCV's DNN module (backend OPENCV, target CPU).
//
// Models:
//  * Darknet: a .cfg (yolov3-tiny, yolov3, yolov4-tiny and relatives) plus a .weights
//    file. Without --weights, weights are SYNTHESIZED (weight_synthesis.h): the compute is
//    the real architecture's, the detections are meaningless.
//  * ONNX (cv::dnn::readNetFromONNX): YOLOv5-style [B, N, 5+C] outputs (pixel coords,
//    objectness * class) or YOLOv8-style [B, 4+C, N] outputs (pixel coords, class only).
//
// What OpenCV 4.6 returns for darknet [yolo] layers (verified by detection_model_test):
// one output per [yolo] layer; for a batch of 1 a 2-D Mat [H*W*anchors, 5+C], for a batch
// of B > 1 a 3-D Mat [B, H*W*anchors, 5+C]; row (y*W + x)*anchors + a holds cx, cy, w, h
// normalized to the network input, objectness, then objectness * sigmoid(class) with
// values <= 0.2 zeroed. OpenCV does no NMS there (nms_threshold defaults to 0); we do it.
//
// Thread-safety: a Detector is used by one thread at a time (cv::dnn::Net is stateful).
#ifndef FRAMESCOPE_SERVICES_DETECTION_DETECTOR_H_
#define FRAMESCOPE_SERVICES_DETECTION_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <opencv2/dnn.hpp>
#include <optional>
#include <string>
#include <vector>

#include "services/detection/darknet_cfg.h"
#include "services/detection/yolo_decode.h"
#include "src/base/status.h"

namespace fs {

enum class ModelFormat { kDarknet, kOnnx };

// Which output convention an ONNX model follows; kAuto decides from the output shape
// ([B, K, N] with K < N is YOLOv8) and, for [B, N, K], from the class count: K == 4 + the
// number of class names means YOLOv8 transposed, else YOLOv5.
enum class OnnxHead { kAuto, kYoloV5, kYoloV8 };

struct ModelOptions {
  std::string model_path;    // .cfg (darknet) or .onnx
  std::string weights_path;  // darknet only; empty: synthesize into cache_dir
  std::string cache_dir;     // empty: DefaultWeightsCacheDir()
  uint64_t synth_seed = 1;
  int input_width = 0;   // 0: darknet [net] width; 416 for ONNX
  int input_height = 0;  // 0: darknet [net] height; 416 for ONNX
};

// A loaded network and what is known about it. Shared by Detector and the model benchmark
// so both run exactly the same net.
struct LoadedModel {
  cv::dnn::Net net;
  ModelFormat format = ModelFormat::kDarknet;
  int input_width = 0;
  int input_height = 0;
  std::vector<std::string> output_names;  // unconnected outputs, in forward() order
  std::string weights_path;               // resolved (darknet)
  bool synthesized_weights = false;
  std::optional<DarknetModel> darknet;  // darknet only: parsed cfg with shapes
  int num_classes = 0;                  // 0 when unknown before the first inference (ONNX)
  std::string Describe() const;         // one line for logs
};

// Loads per `options`: parses and shape-checks the cfg (input sizes must suit the
// architecture, e.g. multiples of 32 for YOLO), validates or synthesizes weights, builds
// the OpenCV net. All OpenCV exceptions become Status errors.
StatusOr<LoadedModel> LoadModel(const ModelOptions& options);

struct DetectorOptions {
  ModelOptions model;
  // Minimum score kept. For darknet models OpenCV already drops scores <= 0.2 inside its
  // [yolo] layer, so thresholds below 0.2 act as 0.2 there.
  float conf_threshold = 0.25f;
  float nms_iou = 0.45f;  // class-wise NMS: drop a box overlapping a better one by IoU > this
  size_t max_detections_per_frame = 100;
  OnnxHead onnx_head = OnnxHead::kAuto;
  // One class name per line. Empty: /usr/share/darknet/data/coco.names when the model has
  // 80 classes and the file exists, else names are "class<N>".
  std::string class_names_path;
};

// One frame to detect on: BGR, 8 bits, already resized (stretched, no letterbox) to the
// network input size. Detections come back in source-frame pixels.
struct FrameInput {
  const uint8_t* bgr = nullptr;
  int stride_bytes = 0;  // bytes per row; 0: input_width * 3
  int source_width = 0;
  int source_height = 0;
};

struct InferTiming {
  double preprocess_s = 0;   // blobFromImages
  double forward_s = 0;      // net.forward
  double postprocess_s = 0;  // decode + NMS + scaling
};

struct InferResult {
  std::vector<std::vector<Detection>> detections;  // one vector per input frame, in order
  InferTiming timing;
};

struct LayerTiming {
  std::string name;  // OpenCV layer name, e.g. "conv_12" (darknet index 12)
  std::string type;  // OpenCV layer type, e.g. "Convolution"; fused layers report 0 ms
  double ms = 0;
};

class Detector {
 public:
  static StatusOr<std::unique_ptr<Detector>> Load(const DetectorOptions& options);

  // Runs one forward pass over all frames (batch = frames.size() >= 1).
  StatusOr<InferResult> Infer(const std::vector<FrameInput>& frames);

  int input_width() const { return model_.input_width; }
  int input_height() const { return model_.input_height; }
  // OpenCV layers (darknet conv + batch norm + activation are three layers before fusion).
  int num_layers() const;
  // Per-layer times of the most recent forward (net.getPerfProfile), in network order.
  std::vector<LayerTiming> LastLayerTimings() const;
  // Multiply-adds * 2 of one forward at this batch size, from OpenCV's estimate.
  int64_t Flops(int batch) const;
  const std::vector<std::string>& class_names() const { return class_names_; }
  const LoadedModel& model() const { return model_; }
  const DetectorOptions& options() const { return options_; }

 private:
  Detector(DetectorOptions options, LoadedModel model, std::vector<std::string> names);
  // Decodes one output tensor for `batch` frames into per-frame boxes (network pixels).
  Status DecodeOutput(const cv::Mat& out, int batch,
                      std::vector<std::vector<Detection>>* per_image);

  DetectorOptions options_;
  LoadedModel model_;
  std::vector<std::string> class_names_;
  mutable cv::dnn::Net net_;  // same net as model_.net (cv::dnn::Net is a shared handle)
};

// Reads a names file (one per line, blank lines ignored, whitespace trimmed).
StatusOr<std::vector<std::string>> ReadClassNames(const std::string& path);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_DETECTOR_H_
