// YOLO output decoding and non-maximum suppression: pure functions over float tensors, so
// they are testable with hand-made data and without OpenCV's DNN module.
//
// Supported layouts (see Detector for which model produces which):
//  * Row-major [N, 5+C] rows of (cx, cy, w, h, objectness, class_0..class_{C-1}):
//    - OpenCV's darknet [yolo] layer output: coordinates normalized to [0,1] of the network
//      input; class columns ALREADY multiplied by objectness (and OpenCV zeroes any product
//      <= 0.2, the layer's built-in `thresh`). Use YoloScore::kClassIsFinal.
//    - ONNX YOLOv5-style exports: pixel coordinates of the network input; class columns are
//      bare probabilities. Use YoloScore::kObjectnessTimesClass.
//  * Column-major [4+C, N] (ONNX YOLOv8-style): no objectness column; row a holds attribute
//    a of every box. Use DecodeYoloColumns with kClassIsFinal.
// Each box gets its best class only (argmax), as darknet's and ultralytics' post-processing
// do; score = that class's (possibly objectness-multiplied) probability.
#ifndef FRAMESCOPE_SERVICES_DETECTION_YOLO_DECODE_H_
#define FRAMESCOPE_SERVICES_DETECTION_YOLO_DECODE_H_

#include <cstddef>
#include <string>
#include <vector>

namespace fs {

// One detected object. x, y is the top-left corner; all four in pixels of whichever frame
// the stage produced it for (network input after decode, source frame after
// ScaleDetections).
struct Detection {
  int class_id = 0;
  std::string class_name;  // filled by the Detector from the names file; empty here
  float score = 0;
  float x = 0;
  float y = 0;
  float w = 0;
  float h = 0;
};

enum class YoloScore {
  kClassIsFinal,          // score = max class column (OpenCV darknet, YOLOv8)
  kObjectnessTimesClass,  // score = objectness * max class column (YOLOv5 ONNX)
};

struct YoloDecodeOptions {
  int num_classes = 80;
  YoloScore score = YoloScore::kClassIsFinal;
  // Rows/columns carry an objectness value after the 4 box values (darknet, YOLOv5) or go
  // straight to the classes (YOLOv8). Without it, kObjectnessTimesClass acts as
  // kClassIsFinal.
  bool has_objectness = true;
  // Coordinates are fractions of the network input (true) or its pixels (false).
  bool normalized_coords = true;
  int input_width = 416;  // network input, to turn normalized coords into pixels
  int input_height = 416;
  float conf_threshold = 0.25f;  // boxes with score < threshold are dropped
};

// Number of values per box: 4 + [1 objectness] + num_classes.
inline size_t YoloAttributes(const YoloDecodeOptions& o) {
  return 4 + (o.has_objectness ? 1 : 0) + static_cast<size_t>(o.num_classes);
}

// Decodes `num_rows` rows of `row_stride` floats (row_stride >= YoloAttributes()) into
// detections in network-input pixels, appending to `out`. Non-finite boxes are skipped.
void DecodeYoloRows(const float* data, size_t num_rows, size_t row_stride,
                    const YoloDecodeOptions& options, std::vector<Detection>* out);

// The transposed layout (YOLOv8 ONNX): a [YoloAttributes(), num_boxes] tensor whose element
// (attribute a, box i) is data[a * num_boxes + i].
void DecodeYoloColumns(const float* data, size_t num_boxes, const YoloDecodeOptions& options,
                       std::vector<Detection>* out);

enum class YoloLayout { kRows, kColumns };

// Decodes one model output holding `batch` images (see SliceBatch for the shapes accepted)
// into per_image[0..batch), appending. Returns false when the shape does not fit `batch`
// images of YoloAttributes(options) values per box.
bool DecodeYoloBatch(const float* data, const std::vector<int>& dims, int batch, YoloLayout layout,
                     const YoloDecodeOptions& options,
                     std::vector<std::vector<Detection>>* per_image);

// Intersection over union of two boxes (0 when either is empty).
float IoU(const Detection& a, const Detection& b);

// Greedy class-wise NMS: highest score first (ties: lower input index first, so the result
// is deterministic); a box is dropped when it overlaps an already kept box of the SAME
// class with IoU > iou_threshold. Boxes of different classes never suppress each other.
// Returns the kept boxes in descending score order, at most max_detections of them
// (0 = no limit).
std::vector<Detection> NonMaxSuppression(std::vector<Detection> boxes, float iou_threshold,
                                         size_t max_detections = 0);

// Maps boxes from network-input pixels to source-frame pixels for a stretch resize (no
// letterbox: the frame was scaled independently in x and y to the input size), clipping to
// the frame.
void ScaleDetections(int input_width, int input_height, int source_width, int source_height,
                     std::vector<Detection>* boxes);

// Where image b's rows are in a model output holding a batch. OpenCV 4.6's darknet [yolo]
// layer returns a 2-D [rows, 5+C] Mat for a batch of 1 but a 3-D [B, rows, 5+C] Mat for
// B > 1; ONNX models return [B, N, K] (or [B, K, N]) always. Given the output's dims and
// the batch size, returns (rows per image, row stride) or {0, 0} when the shape does not
// hold `batch` images. Image b's rows start at data + b * rows * stride.
struct BatchSlice {
  size_t rows = 0;
  size_t stride = 0;
};
BatchSlice SliceBatch(const std::vector<int>& dims, int batch);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_YOLO_DECODE_H_
