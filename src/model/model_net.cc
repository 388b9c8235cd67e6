#include "src/model/model_net.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <opencv2/core.hpp>
#include <opencv2/dnn/shape_utils.hpp>
#include <sstream>

#include "src/base/file_util.h"

namespace fs::model {
namespace {

constexpr int kDefaultOnnxInput = 416;
constexpr size_t kDarknetHeaderBytes = 20;  // major, minor, revision (int32), seen (int64)

bool EndsWithNoCase(std::string s, const std::string& suffix) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status CvError(const std::string& what, const cv::Exception& e) {
  return Err(what + ": OpenCV: " + e.what());
}

// The [net] section's width and height (0 when absent).
void DarknetInputSize(const std::string& cfg, int* width, int* height) {
  std::istringstream in(cfg);
  std::string line;
  bool in_net = false;
  while (std::getline(in, line)) {
    line.erase(
        std::remove_if(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); }),
        line.end());
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (in_net) return;  // the first section is [net]; its keys end at the next one
      in_net = line == "[net]" || line == "[network]";
      continue;
    }
    if (!in_net) continue;
    if (line.rfind("width=", 0) == 0) *width = std::atoi(line.c_str() + 6);
    if (line.rfind("height=", 0) == 0) *height = std::atoi(line.c_str() + 7);
  }
}

// Parameter bytes of a darknet net as OpenCV holds them, which is what its .weights file
// carries after the header (conv weights and biases, batch-norm scale, bias, mean, variance).
size_t DarknetParamBytes(const std::string& cfg) {
  std::vector<char> stub(kDarknetHeaderBytes, 0);  // short: OpenCV allocates, reads nothing
  cv::dnn::Net net = cv::dnn::readNetFromDarknet(cfg.data(), cfg.size(), stub.data(), stub.size());
  size_t floats = 0;
  for (const std::string& name : net.getLayerNames()) {
    for (const cv::Mat& blob : net.getLayer(net.getLayerId(name))->blobs) floats += blob.total();
  }
  return floats * sizeof(float);
}

StatusOr<cv::dnn::Net> LoadDarknet(const ModelSpec& spec, const std::string& cfg,
                                   bool* zero_weights) {
  try {
    if (!spec.weights_path.empty())
      return cv::dnn::readNetFromDarknet(spec.model_path, spec.weights_path);
    std::vector<char> zeros(kDarknetHeaderBytes + DarknetParamBytes(cfg), 0);
    *zero_weights = true;
    return cv::dnn::readNetFromDarknet(cfg.data(), cfg.size(), zeros.data(), zeros.size());
  } catch (const cv::Exception& e) {
    return CvError("loading darknet model " + spec.model_path +
                       (spec.weights_path.empty() ? "" : " with " + spec.weights_path),
                   e);
  }
}

StatusOr<cv::dnn::Net> LoadNet(ModelSpec* spec, std::string* format, bool* zero_weights) {
  const std::string& path = spec->model_path;
  if (EndsWithNoCase(path, ".onnx")) {
    *format = "onnx";
    if (spec->input_width == 0) spec->input_width = spec->input_height = kDefaultOnnxInput;
    try {
      return cv::dnn::readNetFromONNX(path);
    } catch (const cv::Exception& e) {
      return CvError("loading ONNX model " + path, e);
    }
  }
  if (!EndsWithNoCase(path, ".cfg")) {
    return Err("model " + path + ": unknown format; expected a darknet .cfg or an .onnx file");
  }
  *format = "darknet";
  ASSIGN_OR_RETURN(std::string cfg, ReadFile(path));
  int w = 0, h = 0;
  DarknetInputSize(cfg, &w, &h);
  if (spec->input_width == 0) {
    spec->input_width = w;
    spec->input_height = h;
  }
  if (spec->input_width <= 0 || spec->input_height <= 0) {
    return Err(path + " has no [net] width and height: give --input-size");
  }
  if (!spec->weights_path.empty() && !PathExists(spec->weights_path)) {
    return Err("weights file " + spec->weights_path + " does not exist");
  }
  return LoadDarknet(*spec, cfg, zero_weights);
}

int64_t Bytes(const cv::dnn::MatShape& shape) {
  return static_cast<int64_t>(cv::dnn::total(shape)) * static_cast<int64_t>(sizeof(float));
}

}  // namespace

std::string ShapeText(const std::vector<int>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

StatusOr<ModelNet> ModelNet::Load(const ModelSpec& spec) {
  if (spec.model_path.empty()) return Err("no model given (a darknet .cfg or an .onnx file)");
  if (!PathExists(spec.model_path)) return Err("model file " + spec.model_path + " does not exist");
  if ((spec.input_width > 0) != (spec.input_height > 0) || spec.input_width < 0 ||
      spec.input_height < 0) {
    return Err("input size must give both width and height (or neither), both positive");
  }
  ModelNet m;
  m.spec_ = spec;
  if (spec.threads > 0) cv::setNumThreads(spec.threads);
  ASSIGN_OR_RETURN(m.net_, LoadNet(&m.spec_, &m.format_, &m.zero_weights_));
  try {
    if (m.net_.empty()) return Err("OpenCV loaded an empty network from " + spec.model_path);
    m.net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    m.net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    m.outputs_ = m.net_.getUnconnectedOutLayersNames();
  } catch (const cv::Exception& e) {
    return CvError("preparing model " + spec.model_path, e);
  }
  if (m.outputs_.empty()) return Err("model " + spec.model_path + " has no outputs");
  return m;
}

int ModelNet::threads() const { return cv::getNumThreads(); }

Status ModelNet::SetBatch(int batch) {
  if (batch < 1) return Err("batch size must be at least 1, got " + std::to_string(batch));
  if (batch == batch_) return Status::Ok();
  int shape[4] = {batch, 3, spec_.input_height, spec_.input_width};
  input_.create(4, shape, CV_32F);
  cv::RNG rng(12345);  // the same image every run: timings compare across runs
  rng.fill(input_, cv::RNG::UNIFORM, 0.0f, 1.0f);
  batch_ = batch;
  return Status::Ok();
}

StatusOr<double> ModelNet::Forward(int batch) {
  RETURN_IF_ERROR(SetBatch(batch));
  std::vector<cv::Mat> outs;
  try {
    net_.setInput(input_);
    auto start = std::chrono::steady_clock::now();
    net_.forward(outs, outputs_);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } catch (const cv::Exception& e) {
    return CvError("forward pass of " + spec_.model_path + " at batch " + std::to_string(batch) +
                       ", input " + std::to_string(spec_.input_width) + "x" +
                       std::to_string(spec_.input_height),
                   e);
  }
}

std::vector<double> ModelNet::LastLayerSeconds() const {
  std::vector<double> ticks;
  net_.getPerfProfile(ticks);
  for (double& t : ticks) t /= cv::getTickFrequency();
  return ticks;
}

StatusOr<std::vector<LayerInfo>> ModelNet::Layers(int batch) const {
  cv::dnn::MatShape input = {batch, 3, spec_.input_height, spec_.input_width};
  std::vector<LayerInfo> layers;
  try {
    for (const std::string& name : net_.getLayerNames()) {
      LayerInfo l;
      l.id = net_.getLayerId(name);
      l.name = name;
      l.type = net_.getLayer(l.id)->type;
      std::vector<cv::dnn::MatShape> ins, outs;
      net_.getLayerShapes(input, l.id, ins, outs);
      if (!outs.empty()) l.output_shape = outs[0];
      for (const auto& s : ins) l.input_bytes += Bytes(s);
      for (const auto& in : net_.getLayerInputs(l.id)) l.inputs.push_back(in->name);
      l.flops = net_.getFLOPS(l.id, input);
      size_t weights = 0, blobs = 0;
      net_.getMemoryConsumption(l.id, input, weights, blobs);
      l.weight_bytes = static_cast<int64_t>(weights);
      l.blob_bytes = static_cast<int64_t>(blobs);
      layers.push_back(std::move(l));
    }
  } catch (const cv::Exception& e) {
    return CvError("reading the layers of " + spec_.model_path, e);
  }
  return layers;
}

}  // namespace fs::model
