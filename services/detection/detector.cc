#include "services/detection/detector.h"

#include <algorithm>
#include <cctype>
#include <opencv2/core.hpp>
#include <opencv2/dnn/shape_utils.hpp>
#include <sstream>

#include "services/detection/darknet_weights.h"
#include "services/detection/weight_synthesis.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/logging.h"

namespace fs {
namespace {

constexpr const char* kCocoNames = "/usr/share/darknet/data/coco.names";
constexpr int kDefaultOnnxInput = 416;

bool EndsWith(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  std::string tail = s.substr(s.size() - suffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return tail == suffix;
}

double Seconds(int64_t ns) { return static_cast<double>(ns) * 1e-9; }

Status CvError(const std::string& what, const cv::Exception& e) {
  return Err(what + ": OpenCV: " + e.what());
}

}  // namespace

std::string LoadedModel::Describe() const {
  std::ostringstream s;
  s << (format == ModelFormat::kDarknet ? "darknet " : "onnx ");
  if (darknet) s << darknet->origin << " (" << darknet->TotalParams() << " params) ";
  s << input_width << "x" << input_height << ", " << output_names.size() << " outputs";
  if (format == ModelFormat::kDarknet) {
    s << ", weights " << weights_path
      << (synthesized_weights ? " (SYNTHESIZED: detections "
                                "are meaningless)"
                              : "");
  }
  return s.str();
}

StatusOr<LoadedModel> LoadModel(const ModelOptions& options) {
  LoadedModel m;
  const std::string& path = options.model_path;
  if (path.empty()) return Err("no model given (pass a darknet .cfg or an .onnx file)");
  if (!PathExists(path)) {
    return Err("model file " + path +
               " does not exist (pass a darknet .cfg such as "
               "/usr/share/darknet/cfg/yolov3-tiny.cfg, or an .onnx file)");
  }
  if ((options.input_width > 0) != (options.input_height > 0) || options.input_width < 0 ||
      options.input_height < 0) {
    return Err("input size must give both width and height (or neither)");
  }
  if (EndsWith(path, ".onnx")) {
    m.format = ModelFormat::kOnnx;
    m.input_width = options.input_width > 0 ? options.input_width : kDefaultOnnxInput;
    m.input_height = options.input_height > 0 ? options.input_height : kDefaultOnnxInput;
    try {
      m.net = cv::dnn::readNetFromONNX(path);
    } catch (const cv::Exception& e) {
      return CvError("loading ONNX model " + path, e);
    }
  } else if (EndsWith(path, ".cfg")) {
    m.format = ModelFormat::kDarknet;
    ASSIGN_OR_RETURN(DarknetModel cfg,
                     LoadDarknetCfg(path, options.input_width, options.input_height));
    if (cfg.YoloLayers().empty()) {
      return Err(path + " has no [yolo] layer; the detector needs a YOLO detection model");
    }
    m.input_width = cfg.input.w;
    m.input_height = cfg.input.h;
    m.num_classes = cfg.NumClasses();
    if (!options.weights_path.empty()) {
      RETURN_IF_ERROR(ValidateWeightsFile(options.weights_path, cfg));
      m.weights_path = options.weights_path;
    } else {
      std::string cache = options.cache_dir.empty() ? DefaultWeightsCacheDir() : options.cache_dir;
      // The file depends on the cfg only, not on the input size override.
      ASSIGN_OR_RETURN(m.weights_path, EnsureSynthesizedWeights(path, cache, options.synth_seed));
      m.synthesized_weights = true;
    }
    m.darknet = std::move(cfg);
    try {
      m.net = cv::dnn::readNetFromDarknet(path, m.weights_path);
    } catch (const cv::Exception& e) {
      return CvError("loading darknet model " + path + " with " + m.weights_path, e);
    }
  } else {
    return Err("model " + path + ": unknown format; expected a darknet .cfg or an .onnx file");
  }
  try {
    if (m.net.empty()) return Err("OpenCV loaded an empty network from " + path);
    m.net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    m.net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    m.output_names = m.net.getUnconnectedOutLayersNames();
  } catch (const cv::Exception& e) {
    return CvError("preparing model " + path, e);
  }
  if (m.output_names.empty()) return Err("model " + path + " has no outputs");
  return m;
}

StatusOr<std::vector<std::string>> ReadClassNames(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(" \t\r");
    size_t e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos) continue;
    names.push_back(line.substr(b, e - b + 1));
  }
  if (names.empty()) return Err("class names file " + path + " is empty");
  return names;
}

Detector::Detector(DetectorOptions options, LoadedModel model, std::vector<std::string> names)
    : options_(std::move(options)), model_(std::move(model)), class_names_(std::move(names)) {
  net_ = model_.net;
}

StatusOr<std::unique_ptr<Detector>> Detector::Load(const DetectorOptions& options) {
  if (!(options.conf_threshold >= 0 && options.conf_threshold <= 1)) {
    return Err("conf threshold must be in [0, 1]");
  }
  if (!(options.nms_iou >= 0 && options.nms_iou <= 1)) return Err("NMS IoU must be in [0, 1]");
  ASSIGN_OR_RETURN(LoadedModel model, LoadModel(options.model));
  std::vector<std::string> names;
  if (!options.class_names_path.empty()) {
    ASSIGN_OR_RETURN(names, ReadClassNames(options.class_names_path));
  } else if (model.num_classes == 80 && PathExists(kCocoNames)) {
    ASSIGN_OR_RETURN(names, ReadClassNames(kCocoNames));
  }
  if (model.num_classes > 0 && !names.empty() &&
      static_cast<int>(names.size()) != model.num_classes) {
    LOG(WARNING) << "class names file has " << names.size() << " names but the model has "
                 << model.num_classes << " classes; unnamed classes print as class<N>";
  }
  LOG(INFO) << "detector: " << model.Describe();
  return std::unique_ptr<Detector>(new Detector(options, std::move(model), std::move(names)));
}

int Detector::num_layers() const {
  try {
    return static_cast<int>(net_.getLayerNames().size());
  } catch (const cv::Exception&) {
    return 0;
  }
}

std::vector<LayerTiming> Detector::LastLayerTimings() const {
  std::vector<LayerTiming> out;
  try {
    std::vector<double> ticks;
    net_.getPerfProfile(ticks);
    std::vector<std::string> names = net_.getLayerNames();
    const double ms_per_tick = 1000.0 / cv::getTickFrequency();
    // getPerfProfile reports layers 1..N (0 is the input), in getLayerNames() order.
    for (size_t i = 0; i < names.size() && i < ticks.size(); ++i) {
      cv::Ptr<cv::dnn::Layer> layer = net_.getLayer(static_cast<int>(i + 1));
      out.push_back({names[i], layer ? layer->type : std::string(), ticks[i] * ms_per_tick});
    }
  } catch (const cv::Exception& e) {
    LOG(WARNING) << "per-layer timings unavailable: " << e.what();
  }
  return out;
}

int64_t Detector::Flops(int batch) const {
  try {
    return net_.getFLOPS(cv::dnn::MatShape{batch, 3, model_.input_height, model_.input_width});
  } catch (const cv::Exception&) {
    return 0;
  }
}

Status Detector::DecodeOutput(const cv::Mat& out, int batch,
                              std::vector<std::vector<Detection>>* per_image) {
  std::vector<int> dims(out.size.p, out.size.p + out.dims);
  if (out.type() != CV_32F || !out.isContinuous()) {
    return Err("model output is not a continuous float tensor");
  }
  YoloDecodeOptions o;
  o.conf_threshold = options_.conf_threshold;
  o.input_width = model_.input_width;
  o.input_height = model_.input_height;
  YoloLayout layout = YoloLayout::kRows;
  if (model_.format == ModelFormat::kDarknet) {
    o.num_classes = model_.num_classes;
    o.score = YoloScore::kClassIsFinal;  // OpenCV multiplied objectness in already
    o.normalized_coords = true;
  } else {
    if (dims.size() != 3) {
      return Err("ONNX output " + std::to_string(dims.size()) +
                 "-D; expected [B, N, 5+C] (YOLOv5) or [B, 4+C, N] (YOLOv8)");
    }
    OnnxHead head = options_.onnx_head;
    const int known = !class_names_.empty() ? static_cast<int>(class_names_.size()) : 0;
    if (head == OnnxHead::kAuto) {
      if (dims[1] < dims[2]) {
        head = OnnxHead::kYoloV8;
      } else {
        head = known > 0 && dims[2] == 4 + known ? OnnxHead::kYoloV8 : OnnxHead::kYoloV5;
      }
    }
    layout = dims[1] < dims[2] ? YoloLayout::kColumns : YoloLayout::kRows;
    const int attributes = layout == YoloLayout::kColumns ? dims[1] : dims[2];
    o.normalized_coords = false;
    if (head == OnnxHead::kYoloV8) {
      o.has_objectness = false;
      o.score = YoloScore::kClassIsFinal;
      o.num_classes = attributes - 4;
    } else {
      o.has_objectness = true;
      o.score = YoloScore::kObjectnessTimesClass;
      o.num_classes = attributes - 5;
    }
    if (o.num_classes <= 0) return Err("ONNX output has too few values per box");
    model_.num_classes = o.num_classes;
  }
  if (!DecodeYoloBatch(out.ptr<float>(), dims, batch, layout, o, per_image)) {
    std::ostringstream shape;
    for (size_t i = 0; i < dims.size(); ++i) shape << (i ? "x" : "") << dims[i];
    return Err("model output of shape " + shape.str() + " does not hold " + std::to_string(batch) +
               " images of " + std::to_string(YoloAttributes(o)) + " values per box");
  }
  return Status::Ok();
}

StatusOr<InferResult> Detector::Infer(const std::vector<FrameInput>& frames) {
  if (frames.empty()) return Err("Infer needs at least one frame");
  const int w = model_.input_width;
  const int h = model_.input_height;
  for (size_t i = 0; i < frames.size(); ++i) {
    const FrameInput& f = frames[i];
    if (f.bgr == nullptr || f.source_width <= 0 || f.source_height <= 0 ||
        (f.stride_bytes != 0 && f.stride_bytes < w * 3)) {
      return Err("frame " + std::to_string(i) + " has no pixels, a bad stride or no source size");
    }
  }
  const int batch = static_cast<int>(frames.size());
  InferResult result;
  std::vector<cv::Mat> outs;
  int64_t t0 = MonotonicNs();
  int64_t t1 = t0;
  try {
    std::vector<cv::Mat> images;
    images.reserve(frames.size());
    for (const FrameInput& f : frames) {
      // Wraps the caller's pixels without copying; blobFromImages only reads them.
      size_t step =
          f.stride_bytes != 0 ? static_cast<size_t>(f.stride_bytes) : static_cast<size_t>(w) * 3;
      images.emplace_back(h, w, CV_8UC3, const_cast<uint8_t*>(f.bgr), step);
    }
    // Darknet YOLO is trained on RGB in [0,1]; ultralytics exports likewise.
    cv::Mat blob = cv::dnn::blobFromImages(images, 1.0 / 255.0, cv::Size(w, h), cv::Scalar(),
                                           /*swapRB=*/true, /*crop=*/false);
    t1 = MonotonicNs();
    net_.setInput(blob);
    net_.forward(outs, model_.output_names);
  } catch (const cv::Exception& e) {
    return CvError("inference on a batch of " + std::to_string(batch), e);
  }
  int64_t t2 = MonotonicNs();
  std::vector<std::vector<Detection>> raw(frames.size());
  for (const cv::Mat& out : outs) {
    RETURN_IF_ERROR(DecodeOutput(out, batch, &raw));
  }
  result.detections.resize(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    std::vector<Detection> kept =
        NonMaxSuppression(std::move(raw[i]), options_.nms_iou, options_.max_detections_per_frame);
    ScaleDetections(w, h, frames[i].source_width, frames[i].source_height, &kept);
    for (Detection& d : kept) {
      d.class_name = d.class_id < static_cast<int>(class_names_.size())
                         ? class_names_[d.class_id]
                         : "class" + std::to_string(d.class_id);
    }
    result.detections[i] = std::move(kept);
  }
  int64_t t3 = MonotonicNs();
  result.timing = {Seconds(t1 - t0), Seconds(t2 - t1), Seconds(t3 - t2)};
  return result;
}

}  // namespace fs
