#include "services/detection/weight_synthesis.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "src/base/file_util.h"
#include "src/base/logging.h"

namespace fs {
namespace {

constexpr int kCalibrationImages = 4;

// Rounds a positive scale to a 2^(1/16) grid (4.4% steps).
double QuantizeScale(double s) {
  if (!(s > 1e-6)) return 1e-6;
  return std::exp2(std::round(std::log2(s) * 16.0) / 16.0);
}

double QuantizeTo(double x, double step) { return std::round(x / step) * step; }

double Logit(double p) { return std::log(p / (1.0 - p)); }

uint8_t ClampByte(double v) {
  return static_cast<uint8_t>(std::clamp(std::floor(v + 0.5), 0.0, 255.0));
}

}  // namespace

uint64_t SynthesisTag(const std::string& cfg_text, uint64_t seed) {
  std::string key = "framescope-synth-v" + std::to_string(kSynthesisVersion) + "-seed" +
                    std::to_string(seed) + "\n";
  return Fnv1a64(cfg_text, Fnv1a64(key));
}

std::vector<uint8_t> MakeCalibrationImage(uint64_t seed, int width, int height) {
  SplitMix64 rng(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
  auto color = [&](double lo, double hi) {
    return std::array<double, 3>{lo + (hi - lo) * rng.Uniform(), lo + (hi - lo) * rng.Uniform(),
                                 lo + (hi - lo) * rng.Uniform()};
  };
  std::vector<double> img(static_cast<size_t>(width) * height * 3);
  // Background: a vertical gradient ("sky" to "ground") plus value noise summed over
  // octaves with amplitude proportional to wavelength (the 1/f spectrum of photographs),
  // mostly in luminance with a little colour.
  std::array<double, 3> top = color(60, 230);
  std::array<double, 3> bottom = color(20, 160);
  for (int y = 0; y < height; ++y) {
    double fy = static_cast<double>(y) / std::max(1, height - 1);
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        img[(static_cast<size_t>(y) * width + x) * 3 + c] = top[c] * (1 - fy) + bottom[c] * fy;
      }
    }
  }
  for (int octave = 0; octave < 6; ++octave) {
    const int grid = 3 << octave;  // 3, 6, ..., 96 cells across
    const double amplitude = 90.0 / (1 << octave);
    std::vector<double> lum((grid + 1) * (grid + 1));
    std::vector<double> chroma((grid + 1) * (grid + 1) * 3);
    for (double& v : lum) v = (rng.Uniform() - 0.5) * amplitude;
    for (double& v : chroma) v = (rng.Uniform() - 0.5) * amplitude * 0.3;
    for (int y = 0; y < height; ++y) {
      double gy = static_cast<double>(y) * grid / height;
      int y0 = static_cast<int>(gy);
      double ty = gy - y0;
      for (int x = 0; x < width; ++x) {
        double gx = static_cast<double>(x) * grid / width;
        int x0 = static_cast<int>(gx);
        double tx = gx - x0;
        auto lerp = [&](const std::vector<double>& g, int stride, int c) {
          auto at = [&](int yy, int xx) { return g[(yy * (grid + 1) + xx) * stride + c]; };
          return (at(y0, x0) * (1 - tx) + at(y0, x0 + 1) * tx) * (1 - ty) +
                 (at(y0 + 1, x0) * (1 - tx) + at(y0 + 1, x0 + 1) * tx) * ty;
        };
        double l = lerp(lum, 1, 0);
        for (int c = 0; c < 3; ++c) {
          img[(static_cast<size_t>(y) * width + x) * 3 + c] += l + lerp(chroma, 3, c);
        }
      }
    }
  }
  // Foreground: coloured rectangles and ellipses of varied sizes, some striped.
  int shapes = 6 + static_cast<int>(rng.Next() % 7);
  for (int s = 0; s < shapes; ++s) {
    std::array<double, 3> fill = color(0, 255);
    double rw = (0.04 + 0.2 * rng.Uniform()) * width;
    double rh = (0.04 + 0.2 * rng.Uniform()) * height;
    double cx = rng.Uniform() * width;
    double cy = rng.Uniform() * height;
    bool ellipse = rng.Next() % 2 == 0;
    int stripe = rng.Next() % 3 == 0 ? 3 + static_cast<int>(rng.Next() % 6) : 0;
    int x_lo = std::max(0, static_cast<int>(cx - rw));
    int x_hi = std::min(width - 1, static_cast<int>(cx + rw));
    int y_lo = std::max(0, static_cast<int>(cy - rh));
    int y_hi = std::min(height - 1, static_cast<int>(cy + rh));
    for (int y = y_lo; y <= y_hi; ++y) {
      for (int x = x_lo; x <= x_hi; ++x) {
        double dx = (x - cx) / rw;
        double dy = (y - cy) / rh;
        if (ellipse && dx * dx + dy * dy > 1.0) continue;
        double shade = stripe > 0 && (x / stripe) % 2 == 0 ? 0.6 : 1.0;
        for (int c = 0; c < 3; ++c) {
          img[(static_cast<size_t>(y) * width + x) * 3 + c] = fill[c] * shade;
        }
      }
    }
  }
  std::vector<uint8_t> out(img.size());
  for (size_t i = 0; i < img.size(); ++i) {
    out[i] = ClampByte(img[i] + (rng.Uniform() - 0.5) * 16.0);
  }
  return out;
}

Status CalibrateYoloHeads(const std::string& cfg_text, const DarknetModel& model,
                          const SynthesisOptions& options, DarknetWeights* weights) {
  std::vector<int> yolos = model.YoloLayers();
  if (yolos.empty()) return Status::Ok();
  // Which ConvWeights entry holds each layer.
  std::vector<int> conv_slot(model.layers.size(), -1);
  for (size_t i = 0; i < weights->convs.size(); ++i) conv_slot[weights->convs[i].layer] = i;
  std::vector<std::string> head_convs;
  for (int y : yolos) {
    int c = y - 1;
    if (model.layers[c].type != CfgLayerType::kConvolutional || conv_slot[c] < 0) {
      return Err(model.origin + ":" + std::to_string(model.layers[y].line) +
                 ": weight synthesis needs a [convolutional] right before each [yolo]");
    }
    head_convs.push_back("conv_" + std::to_string(c));
  }

  const int w = model.input.w;
  const int h = model.input.h;
  std::vector<cv::Mat> outs;
  try {
    std::string bytes = EncodeDarknetWeights(model, *weights);
    cv::dnn::Net net =
        cv::dnn::readNetFromDarknet(cfg_text.data(), cfg_text.size(), bytes.data(), bytes.size());
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    for (const std::string& name : head_convs) {
      if (net.getLayerId(name) < 0) {
        return Err("OpenCV names darknet layers differently than expected: no layer '" + name +
                   "' (weight synthesis reads the raw outputs of the convs before [yolo])");
      }
    }
    std::vector<cv::Mat> images;
    for (int i = 0; i < kCalibrationImages; ++i) {
      std::vector<uint8_t> px = MakeCalibrationImage(1000 + i, w, h);
      images.push_back(cv::Mat(h, w, CV_8UC3, px.data()).clone());
    }
    cv::Mat blob = cv::dnn::blobFromImages(images, 1.0 / 255.0, cv::Size(w, h), cv::Scalar(),
                                           /*swapRB=*/true, /*crop=*/false);
    net.setInput(blob);
    net.forward(outs, head_convs);
  } catch (const cv::Exception& e) {
    return Err(std::string("calibrating synthesized weights with OpenCV failed: ") + e.what());
  }

  // Per-class preference shared by all heads: a few classes come out more often, as in
  // real scenes, and neighbouring cells tend to agree so NMS has something to merge.
  const int classes = model.NumClasses();
  std::vector<double> class_bias(classes);
  {
    SplitMix64 rng(options.seed ^ 0xC1A55E5ull);
    for (double& b : class_bias) b = 2.0 + rng.Normal();
  }
  // Objectness is the last factor of the score: choose it so that score ~= threshold at the
  // calibration quantile, assuming the winning class probability is ~0.97.
  const double edge_logit = Logit(std::min(0.99, options.score_threshold / 0.97));
  const double obj_gain = 2.0;

  for (size_t hi = 0; hi < yolos.size(); ++hi) {
    const CfgLayer& yolo = model.layers[yolos[hi]];
    ConvWeights& conv = weights->convs[conv_slot[yolos[hi] - 1]];
    const cv::Mat& out = outs[hi];
    CHECK(out.dims == 4 && out.size[0] == kCalibrationImages) << "unexpected conv output";
    const int channels = out.size[1];
    const int64_t plane = int64_t{out.size[2]} * out.size[3];
    const int per_anchor = yolo.classes + 5;
    CHECK(channels == static_cast<int>(yolo.mask.size()) * per_anchor);
    const float* data = out.ptr<float>();
    auto at = [&](int k, int c, int64_t i) {
      return data[(int64_t{k} * channels + c) * plane + i];
    };

    std::vector<double> mean(channels), scale(channels);
    for (int c = 0; c < channels; ++c) {
      double sum = 0, sum2 = 0;
      for (int k = 0; k < kCalibrationImages; ++k) {
        for (int64_t i = 0; i < plane; ++i) {
          double v = at(k, c, i);
          sum += v;
          sum2 += v * v;
        }
      }
      double n = static_cast<double>(kCalibrationImages) * plane;
      double m = sum / n;
      scale[c] = QuantizeScale(std::sqrt(std::max(0.0, sum2 / n - m * m)));
      mean[c] = QuantizeTo(m, scale[c] / 16.0);
    }
    // The standardized objectness values of every cell and anchor; the k-th largest sets
    // the edge, k = boxes_per_head per image.
    std::vector<double> z;
    for (size_t a = 0; a < yolo.mask.size(); ++a) {
      int c = static_cast<int>(a) * per_anchor + 4;
      for (int k = 0; k < kCalibrationImages; ++k) {
        for (int64_t i = 0; i < plane; ++i) z.push_back((at(k, c, i) - mean[c]) / scale[c]);
      }
    }
    std::sort(z.begin(), z.end(), std::greater<double>());
    size_t rank = static_cast<size_t>(std::clamp(options.boxes_per_head * kCalibrationImages, 1.0,
                                                 static_cast<double>(z.size())));
    double z_edge = QuantizeTo(z[rank - 1], 1.0 / 16.0);

    const int64_t fan_in = static_cast<int64_t>(conv.weights.size()) / channels;
    for (int c = 0; c < channels; ++c) {
      int role = c % per_anchor;
      double gain = 1.0;
      double offset = 0.0;
      if (role == 2 || role == 3) {
        gain = 0.3;  // box w/h: anchor * exp(N(0, 0.3))
      } else if (role == 4) {
        gain = obj_gain;
        offset = edge_logit - obj_gain * z_edge;
      } else if (role >= 5) {
        gain = 0.5;
        offset = class_bias[role - 5];
      }
      // t' = gain * (t - mean) / scale + offset, folded into the conv's weights and bias.
      double k = gain / scale[c];
      for (int64_t i = 0; i < fan_in; ++i) {
        float& wv = conv.weights[static_cast<size_t>(c * fan_in + i)];
        wv = static_cast<float>(wv * k);
      }
      conv.biases[c] = static_cast<float>((conv.biases[c] - mean[c]) * k + offset);
    }
  }
  return Status::Ok();
}

StatusOr<std::string> SynthesizeWeightsFile(const std::string& cfg_text, const DarknetModel& model,
                                            const SynthesisOptions& options) {
  DarknetWeights weights = SynthesizeDarknetWeights(model, options.seed);
  weights.header = DarknetWeightsHeader{};
  weights.header.seen = SynthesisTag(cfg_text, options.seed);
  RETURN_IF_ERROR(CalibrateYoloHeads(cfg_text, model, options, &weights));
  return EncodeDarknetWeights(model, weights);
}

std::string SynthesizedWeightsPath(const std::string& cfg_path, const std::string& cache_dir,
                                   uint64_t seed) {
  std::string base = cfg_path.substr(cfg_path.find_last_of('/') + 1);
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".cfg") == 0) {
    base.resize(base.size() - 4);
  }
  return cache_dir + "/" + base + "-synth-" + std::to_string(seed) + ".weights";
}

StatusOr<std::string> EnsureSynthesizedWeights(const std::string& cfg_path,
                                               const std::string& cache_dir, uint64_t seed) {
  ASSIGN_OR_RETURN(std::string cfg_text, ReadFile(cfg_path));
  ASSIGN_OR_RETURN(DarknetModel model, ParseDarknetCfg(cfg_text, cfg_path));
  std::string path = SynthesizedWeightsPath(cfg_path, cache_dir, seed);
  uint64_t tag = SynthesisTag(cfg_text, seed);
  if (PathExists(path)) {
    StatusOr<DarknetWeightsHeader> header = ReadWeightsHeader(path);
    if (header.ok() && header->seen == tag && ValidateWeightsFile(path, model).ok()) return path;
    LOG(INFO) << "cached weights " << path << " are stale or damaged; synthesizing again";
  }
  RETURN_IF_ERROR(MakeDirs(cache_dir).Annotate("creating the weights cache"));
  LOG(INFO) << "synthesizing MEANINGLESS weights for " << cfg_path << " (seed " << seed << ", "
            << model.TotalParams() << " parameters) into " << path
            << "; pass --weights with trained weights for real detections";
  SynthesisOptions options;
  options.seed = seed;
  ASSIGN_OR_RETURN(std::string bytes, SynthesizeWeightsFile(cfg_text, model, options));
  RETURN_IF_ERROR(WriteFileAtomic(path, bytes));
  return path;
}

std::string DefaultWeightsCacheDir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  if (std::string d = env("FRAMESCOPE_CACHE_DIR"); !d.empty()) return d + "/weights";
  if (std::string d = env("XDG_CACHE_HOME"); !d.empty()) return d + "/framescope/weights";
  if (std::string d = env("HOME"); !d.empty()) return d + "/.cache/framescope/weights";
  return "/tmp/framescope-cache/weights";
}

}  // namespace fs
