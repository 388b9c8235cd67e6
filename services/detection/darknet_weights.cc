#include "services/detection/darknet_weights.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "src/base/file_util.h"
#include "src/base/logging.h"

namespace fs {
namespace {

static_assert(std::endian::native == std::endian::little,
              "darknet .weights are little-endian; a big-endian host needs byte swaps here");

void AppendRaw(std::string* out, const void* data, size_t n) {
  out->append(static_cast<const char*>(data), n);
}

void AppendFloats(std::string* out, const std::vector<float>& v) {
  AppendRaw(out, v.data(), v.size() * sizeof(float));
}

// Mean-field statistics of one tensor: per-channel spatial mean and variance, assuming the
// input is stationary (interior pixels; zero padding at the borders is ignored).
struct ChannelStats {
  std::vector<double> mean;
  std::vector<double> var;
};

// Mean and variance of act(z) for z ~ N(0, s^2), as (a, b) with mean = a*s and
// var = b*s^2 for the piecewise-linear activations (logistic is special-cased by caller).
struct ActivationMoments {
  double mean_per_s;
  double var_per_s2;
};
ActivationMoments MomentsOf(const std::string& activation) {
  if (activation == "linear") return {0.0, 1.0};
  if (activation == "leaky") return {0.359, 0.376};  // slope 0.1 below zero
  if (activation == "relu") return {0.399, 0.341};
  if (activation == "swish") return {0.207, 0.312};
  if (activation == "mish") return {0.253, 0.345};
  return {0.3, 0.35};  // other ReLU-like activations
}

void Activate(const std::string& activation, double s, double* mean, double* var) {
  if (activation == "logistic") {
    *mean = 0.5;
    *var = 0.043 * std::min(s * s, 1.0);
    return;
  }
  ActivationMoments m = MomentsOf(activation);
  *mean = m.mean_per_s * s;
  *var = m.var_per_s2 * s * s;
}

}  // namespace

uint64_t Fnv1a64(const std::string& data, uint64_t hash) {
  for (unsigned char ch : data) {
    hash ^= ch;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

int64_t ExpectedWeightsBytes(const DarknetModel& model, const DarknetWeightsHeader& header) {
  return header.size_bytes() + 4 * model.TotalParams();
}

StatusOr<DarknetWeightsHeader> ParseWeightsHeader(const std::string& bytes,
                                                  const std::string& origin) {
  DarknetWeightsHeader h;
  if (bytes.size() < 12) {
    return Err(origin + ": " + std::to_string(bytes.size()) +
               " bytes is too short for a darknet .weights header (at least 16)");
  }
  std::memcpy(&h.major, bytes.data(), 4);
  std::memcpy(&h.minor, bytes.data() + 4, 4);
  std::memcpy(&h.revision, bytes.data() + 8, 4);
  if (h.major < 0 || h.minor < 0 || h.major > 1000 || h.minor > 1000) {
    return Err(origin + ": header version " + std::to_string(h.major) + "." +
               std::to_string(h.minor) + " is not a darknet .weights file");
  }
  if (static_cast<int64_t>(bytes.size()) < h.size_bytes()) {
    return Err(origin + ": file ends inside the " + std::to_string(h.size_bytes()) +
               "-byte header");
  }
  if (h.size_bytes() == 20) {
    std::memcpy(&h.seen, bytes.data() + 12, 8);
  } else {
    uint32_t seen32 = 0;
    std::memcpy(&seen32, bytes.data() + 12, 4);
    h.seen = seen32;
  }
  return h;
}

StatusOr<DarknetWeightsHeader> ReadWeightsHeader(const std::string& path) {
  std::string head(20, '\0');
  FILE* f = fopen(path.c_str(), "rbe");
  if (f == nullptr) return Err("cannot read weights file " + path + ": " + strerror(errno));
  size_t n = fread(head.data(), 1, head.size(), f);
  fclose(f);
  head.resize(n);
  return ParseWeightsHeader(head, path);
}

Status ValidateWeightsFile(const std::string& path, const DarknetModel& model) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return Err("weights file " + path + " cannot be opened: " + strerror(errno) +
               " (pass --weights with a darknet .weights file trained for " + model.origin +
               ", or leave it empty to synthesize meaningless weights)");
  }
  if (!S_ISREG(st.st_mode)) return Err("weights file " + path + " is not a regular file");
  ASSIGN_OR_RETURN(DarknetWeightsHeader header, ReadWeightsHeader(path));
  int64_t expected = ExpectedWeightsBytes(model, header);
  int64_t actual = st.st_size;
  if (actual == expected) return Status::Ok();
  int64_t diff = actual - expected;
  std::string what = diff < 0 ? "too short" : "too long";
  int64_t abs_diff = diff < 0 ? -diff : diff;
  return Err("weights file " + path + " is " + what + " for " + model.origin + ": " +
             std::to_string(actual) + " bytes, expected " + std::to_string(expected) + " (" +
             std::to_string(header.size_bytes()) + "-byte header + " +
             std::to_string(model.TotalParams()) + " float32 parameters); " +
             std::to_string(abs_diff) + " bytes (" + std::to_string(abs_diff / 4) +
             " parameters) " + (diff < 0 ? "missing" : "extra") +
             ". The weights were probably trained for a different cfg (classes, filters or "
             "layers differ)");
}

std::string EncodeDarknetWeights(const DarknetModel& model, const DarknetWeights& w) {
  std::string out;
  out.reserve(static_cast<size_t>(ExpectedWeightsBytes(model, w.header)));
  AppendRaw(&out, &w.header.major, 4);
  AppendRaw(&out, &w.header.minor, 4);
  AppendRaw(&out, &w.header.revision, 4);
  if (w.header.size_bytes() == 20) {
    AppendRaw(&out, &w.header.seen, 8);
  } else {
    uint32_t seen32 = static_cast<uint32_t>(w.header.seen);
    AppendRaw(&out, &seen32, 4);
  }
  size_t next = 0;
  for (const CfgLayer& l : model.layers) {
    if (l.type != CfgLayerType::kConvolutional) continue;
    CHECK(next < w.convs.size()) << "missing weights for layer " << l.index;
    const ConvWeights& c = w.convs[next++];
    CHECK(c.layer == l.index) << "weights for layer " << c.layer << " where " << l.index
                              << " was expected";
    int64_t size = static_cast<int64_t>(c.biases.size() + c.scales.size() + c.rolling_mean.size() +
                                        c.rolling_variance.size() + c.weights.size());
    CHECK(size == l.params) << "layer " << l.index << " has " << size << " values, expected "
                            << l.params;
    AppendFloats(&out, c.biases);
    if (l.batch_normalize) {
      AppendFloats(&out, c.scales);
      AppendFloats(&out, c.rolling_mean);
      AppendFloats(&out, c.rolling_variance);
    }
    AppendFloats(&out, c.weights);
  }
  CHECK(next == w.convs.size()) << "more weight blocks than conv layers";
  return out;
}

// Makes the input of each [yolo] head conv a clamped feature, so the head's logits saturate
// instead of growing with image contrast. A random conv net with leaky/ReLU activations and
// no normalisation at inference is positively homogeneous: doubling the contrast doubles
// every logit, and the number of boxes above a fixed threshold then swings by 10-100x
// between a smooth painting and a textured photo. Pairing channels fixes that: filter 2k+1
// copies filter 2k with its batch-norm bias lowered by `delta`, and the head conv weighs
// the pair as w * (a_2k - a_2k+1) = w * (leaky(z) - leaky(z - delta)), which is
// 0.1*delta + 0.9*clamp(z, 0, delta): bounded whatever the contrast.
void SaturateHeadInputs(const DarknetModel& model, double delta, DarknetWeights* out) {
  std::vector<int> slot(model.layers.size(), -1);
  for (size_t i = 0; i < out->convs.size(); ++i) slot[out->convs[i].layer] = static_cast<int>(i);
  for (int y : model.YoloLayers()) {
    const int head = y - 1;
    const int feed = head - 1;
    if (feed < 0 || slot[head] < 0 || slot[feed] < 0) continue;
    const CfgLayer& hl = model.layers[head];
    const CfgLayer& fl = model.layers[feed];
    if (!fl.batch_normalize || fl.groups != 1 || hl.groups != 1 || fl.filters % 2 != 0 ||
        fl.activation == "linear" || fl.activation == "logistic") {
      continue;  // keep the plain initialisation; calibration still applies
    }
    ConvWeights& f = out->convs[slot[feed]];
    const size_t per_filter = f.weights.size() / fl.filters;
    for (int k = 0; k + 1 < fl.filters; k += 2) {
      std::copy_n(&f.weights[k * per_filter], per_filter, &f.weights[(k + 1) * per_filter]);
      f.rolling_mean[k + 1] = f.rolling_mean[k];
      f.rolling_variance[k + 1] = f.rolling_variance[k];
      f.scales[k + 1] = f.scales[k];
      f.biases[k + 1] = static_cast<float>(f.biases[k] - delta);
    }
    ConvWeights& h = out->convs[slot[head]];
    const size_t taps = static_cast<size_t>(hl.size) * hl.size;
    const size_t per_out = static_cast<size_t>(fl.filters) * taps;
    for (int o = 0; o < hl.filters; ++o) {
      float* w = &h.weights[o * per_out];
      for (int k = 0; k + 1 < fl.filters; k += 2) {
        for (size_t t = 0; t < taps; ++t) w[(k + 1) * taps + t] = -w[k * taps + t];
      }
    }
  }
}

DarknetWeights SynthesizeDarknetWeights(const DarknetModel& model, uint64_t seed) {
  DarknetWeights out;
  // Mean-field propagation of per-channel mean and variance. Input pixels are in [0,1]
  // (blobFromImage scale 1/255): mean ~0.45, variance ~0.07 per channel.
  std::vector<ChannelStats> stats(model.layers.size());
  const ChannelStats input{std::vector<double>(model.input.c, 0.45),
                           std::vector<double>(model.input.c, 0.07)};
  auto in_stats = [&](const CfgLayer& l) -> const ChannelStats& {
    return l.index == 0 ? input : stats[l.index - 1];
  };
  for (const CfgLayer& l : model.layers) {
    ChannelStats& st = stats[l.index];
    const ChannelStats& in = in_stats(l);
    switch (l.type) {
      case CfgLayerType::kConvolutional: {
        const int in_c = static_cast<int>(in.mean.size());
        const int group_in = in_c / l.groups;
        const int group_out = l.filters / l.groups;
        const int taps = l.size * l.size;
        const int64_t fan_in = int64_t{group_in} * taps;
        // One independent stream per layer: resizing one layer does not reshuffle others.
        SplitMix64 rng(seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(l.index + 1)));
        ConvWeights c;
        c.layer = l.index;
        c.weights.resize(static_cast<size_t>(l.filters * fan_in));
        const double std = 1.0 / std::sqrt(static_cast<double>(fan_in));
        for (float& v : c.weights) v = static_cast<float>(rng.Normal() * std);
        c.biases.assign(l.filters, 0.0f);
        if (l.batch_normalize) {
          c.scales.assign(l.filters, 1.0f);
          c.rolling_mean.assign(l.filters, 0.0f);
          c.rolling_variance.assign(l.filters, 1.0f);
        }
        st.mean.resize(l.filters);
        st.var.resize(l.filters);
        for (int o = 0; o < l.filters; ++o) {
          const int first_in = (o / group_out) * group_in;
          const float* w = &c.weights[static_cast<size_t>(o * fan_in)];
          // Pre-activation mean is exact for stationary inputs; the variance treats inputs
          // as independent, which is unbiased over random weights whatever the correlation.
          double mean = 0, var = 0;
          for (int i = 0; i < group_in; ++i) {
            double sum = 0, sum2 = 0;
            for (int k = 0; k < taps; ++k) {
              double wv = w[i * taps + k];
              sum += wv;
              sum2 += wv * wv;
            }
            mean += in.mean[first_in + i] * sum;
            var += in.var[first_in + i] * sum2;
          }
          var = std::max(var, 1e-6);
          double s = 1.0;  // std of the centred pre-activation
          if (l.batch_normalize) {
            // Batch norm centres and scales: (x - mean) / sqrt(var) ~ (0, 1).
            c.rolling_mean[o] = static_cast<float>(mean);
            c.rolling_variance[o] = static_cast<float>(var);
          } else {
            c.biases[o] = static_cast<float>(-mean);  // centre; keep the scale
            s = std::sqrt(var);
          }
          Activate(l.activation, s, &st.mean[o], &st.var[o]);
        }
        out.convs.push_back(std::move(c));
        break;
      }
      case CfgLayerType::kMaxpool:
        // The max of a window of correlated values: larger mean, smaller spread.
        st = in;
        if (l.size > 1) {
          for (size_t i = 0; i < st.mean.size(); ++i) {
            st.mean[i] += 0.7 * std::sqrt(in.var[i]);
            st.var[i] *= 0.6;
          }
        }
        break;
      case CfgLayerType::kUpsample:
      case CfgLayerType::kYolo:
        st = in;
        break;
      case CfgLayerType::kRoute:
        for (int i : l.inputs) {
          const ChannelStats& src = stats[i];
          size_t part = src.mean.size() / l.groups;
          size_t first = part * l.group_id;
          st.mean.insert(st.mean.end(), src.mean.begin() + first, src.mean.begin() + first + part);
          st.var.insert(st.var.end(), src.var.begin() + first, src.var.begin() + first + part);
        }
        break;
      case CfgLayerType::kShortcut: {
        const ChannelStats& a = stats[l.inputs[0]];
        const ChannelStats& b = stats[l.inputs[1]];
        st.mean.resize(a.mean.size());
        st.var.resize(a.var.size());
        for (size_t i = 0; i < a.mean.size(); ++i) {
          st.mean[i] = a.mean[i] + b.mean[i];
          st.var[i] = a.var[i] + b.var[i];
        }
        if (l.activation != "linear") {
          for (size_t i = 0; i < st.mean.size(); ++i) {
            double m = 0, v = 0;
            Activate(l.activation, std::sqrt(st.var[i]), &m, &v);
            st.mean[i] = m;  // approximate: treats the sum as centred
            st.var[i] = v;
          }
        }
        break;
      }
    }
  }
  SaturateHeadInputs(model, /*delta=*/0.3, &out);
  return out;
}

}  // namespace fs
