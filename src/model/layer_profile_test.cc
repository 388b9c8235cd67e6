#include "src/model/layer_profile.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

namespace fs::model {
namespace {

constexpr const char* kTinyCfg = "/usr/share/darknet/cfg/yolov3-tiny.cfg";

ModelSpec Spec(const std::string& path, int input = 0) {
  ModelSpec spec;
  spec.model_path = path;
  spec.input_width = spec.input_height = input;
  return spec;
}

LayerInfo Layer(const std::string& type, std::vector<int> shape, int64_t flops = 0) {
  LayerInfo l;
  l.type = type;
  l.output_shape = std::move(shape);
  l.flops = flops;
  return l;
}

// Expected FLOPs of each [convolutional] of a darknet cfg, worked out from the cfg alone at a
// square input: channels and sizes carried through conv, maxpool, route and upsample, then
// 2 * k * k * Cin * Cout * H * W multiply-adds plus one bias add per output.
std::map<std::string, int64_t> ConvFlopsFromCfg(const std::string& path, int input) {
  std::ifstream in(path);
  std::string line;
  struct Section {
    std::string type;
    std::map<std::string, std::string> kv;
  };
  std::vector<Section> sections;
  while (std::getline(in, line)) {
    line.erase(std::remove_if(line.begin(), line.end(), ::isspace), line.end());
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      sections.push_back({line.substr(1, line.size() - 2), {}});
    } else if (auto eq = line.find('='); eq != std::string::npos && !sections.empty()) {
      sections.back().kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  std::vector<int> channels, size;  // per layer (the [net] section is not a layer)
  int c = 3, s = input;
  std::map<std::string, int64_t> flops;
  for (size_t i = 1; i < sections.size(); ++i) {
    const auto& sec = sections[i];
    const int layer = static_cast<int>(i) - 1;
    auto get = [&](const char* k, int def) {
      return sec.kv.count(k) ? std::stoi(sec.kv.at(k)) : def;
    };
    if (sec.type == "convolutional") {
      int k = get("size", 1), stride = get("stride", 1), filters = get("filters", 1);
      s = s / stride;
      flops["conv_" + std::to_string(layer)] = int64_t{s} * s * filters * (2LL * k * k * c + 1);
      c = filters;
    } else if (sec.type == "maxpool") {
      s = (s + get("stride", 1) - 1) / get("stride", 1);
    } else if (sec.type == "upsample") {
      s *= get("stride", 2);
    } else if (sec.type == "route") {
      std::stringstream ls(sec.kv.at("layers"));
      std::string item;
      c = 0;
      while (std::getline(ls, item, ',')) {
        int ref = std::stoi(item);
        if (ref < 0) ref += layer;
        c += channels[static_cast<size_t>(ref)];
        s = size[static_cast<size_t>(ref)];
      }
    }
    channels.push_back(c);
    size.push_back(s);
  }
  return flops;
}

class YoloTinyProfile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto net = ModelNet::Load(Spec(kTinyCfg));
    ASSERT_TRUE(net.ok()) << net.status().message();
    net_ = new ModelNet(std::move(*net));
    LayerProfileOptions o;
    o.warmup = 1;
    o.min_runs = o.max_runs = 5;
    auto p = ProfileLayers(net_, o);
    ASSERT_TRUE(p.ok()) << p.status().message();
    profile_ = new LayerProfile(std::move(*p));
  }
  static void TearDownTestSuite() {
    delete profile_;
    delete net_;
  }
  const LayerStats* Find(const std::string& name) {
    for (const auto& l : profile_->layers) {
      if (l.info.name == name) return &l;
    }
    return nullptr;
  }
  static ModelNet* net_;
  static LayerProfile* profile_;
};
ModelNet* YoloTinyProfile::net_ = nullptr;
LayerProfile* YoloTinyProfile::profile_ = nullptr;

TEST_F(YoloTinyProfile, EveryConvolutionHasItsTimeAndTheFlopsOfTheCfg) {
  ASSERT_NE(profile_, nullptr);
  EXPECT_TRUE(net_->zero_weights());
  EXPECT_EQ(net_->input_width(), 416);  // the cfg's [net] size
  const auto expected = ConvFlopsFromCfg(kTinyCfg, 416);
  ASSERT_EQ(expected.size(), 13u);  // yolov3-tiny has 13 convolutions
  for (const auto& [name, flops] : expected) {
    const LayerStats* l = Find(name);
    ASSERT_NE(l, nullptr) << name << " missing from the profile";
    EXPECT_EQ(l->info.type, "Convolution") << name;
    EXPECT_FALSE(l->fused) << name;
    EXPECT_GT(l->median_ms, 0) << name;
    EXPECT_EQ(l->info.flops, flops) << name;
    EXPECT_EQ(l->flops_source, "opencv getFLOPS") << name;
  }
  // The yolo heads and the maxpools are timed layers too.
  for (const char* name : {"yolo_16", "yolo_23", "pool_1", "pool_11", "upsample_19"}) {
    ASSERT_NE(Find(name), nullptr) << name;
    EXPECT_FALSE(Find(name)->fused) << name;
  }
}

TEST_F(YoloTinyProfile, LayerTimesSumToTheTotalAndFusedLayersNameTheirHost) {
  ASSERT_NE(profile_, nullptr);
  double sum = 0;
  for (const auto& l : profile_->layers) {
    EXPECT_GE(l.median_ms, 0) << l.info.name;
    sum += l.median_ms;
  }
  // Medians of parts need not sum to the median of sums; on 5 runs they agree within 10 %.
  EXPECT_NEAR(sum, profile_->total_ms, 0.10 * profile_->total_ms);
  // The layers' ticks are most of forward(): what is left is OpenCV's own bookkeeping.
  EXPECT_LE(profile_->total_ms, profile_->forward_wall_ms * 1.02);
  EXPECT_GT(profile_->total_ms, profile_->forward_wall_ms * 0.8);
  ASSERT_NE(Find("bn_0"), nullptr);
  EXPECT_TRUE(Find("bn_0")->fused);
  EXPECT_EQ(Find("bn_0")->fused_into, "conv_0");
  ASSERT_NE(Find("leaky_1"), nullptr);  // conv_0's activation, after its batch norm
  EXPECT_EQ(Find("leaky_1")->fused_into, "conv_0");
  double shares = 0;
  for (const auto& l : profile_->layers) shares += l.share;
  EXPECT_NEAR(shares, 1.0, 1e-9);
}

TEST_F(YoloTinyProfile, JsonAndChromeTraceParse) {
  ASSERT_NE(profile_, nullptr);
  Json j = LayerProfileJson(*profile_, *net_, {"--model", "zero-filled", 1, 2, false},
                            Err("skipped in this test"));
  auto back = Json::Parse(j.Dump(2));
  ASSERT_TRUE(back.ok());
  EXPECT_DOUBLE_EQ(back->Get("total_inference_time_ms").AsDouble(), profile_->total_ms);
  const auto& layers = back->Get("layer_timings").AsArray();
  ASSERT_EQ(layers.size(), profile_->layers.size());
  EXPECT_EQ(layers[0].Get("name").AsString(), "conv_0");
  EXPECT_GT(layers[0].Get("gflops_per_s").AsDouble(), 0);
  EXPECT_GT(back->Get("timed_layer_count").AsInt(), 20);
  EXPECT_DOUBLE_EQ(back->Get("per_image_ms").AsDouble(), profile_->total_ms);  // batch 1

  auto trace = Json::Parse(ChromeTrace(*profile_, "yolo").Dump());
  ASSERT_TRUE(trace.ok());
  const auto& events = trace->Get("traceEvents").AsArray();
  ASSERT_EQ(static_cast<int64_t>(events.size()), back->Get("timed_layer_count").AsInt() + 1);
  double end = 0;
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i].Get("ph").AsString(), "X");
    EXPECT_NEAR(events[i].Get("ts").AsDouble(), end, 1e-6);  // back to back, in order
    end += events[i].Get("dur").AsDouble();
  }
}

TEST_F(YoloTinyProfile, LayersArePlacedAgainstTheMachinePeak) {
  ASSERT_NE(profile_, nullptr);
  MachinePeak peak;  // hand-set: 100 GFLOP/s a thread, 150 all-core; 20 GB/s a thread, 25 all
  peak.threads = 2;
  peak.flops_single.best = 100e9;
  peak.flops_all.best = 150e9;
  peak.gemm_single.best = 80e9;
  peak.gemm_all.best = 120e9;
  peak.bandwidth_single.best = 20e9;
  peak.bandwidth_all.best = 25e9;
  Json j = LayerProfileJson(*profile_, *net_, {"--model", "zero-filled", 1, 2, false}, peak);
  EXPECT_DOUBLE_EQ(j.Get("roofs").Get("flops_per_s").AsDouble(), 150e9);  // min(2 x 100, 150)
  EXPECT_DOUBLE_EQ(j.Get("roofs").Get("bytes_per_s").AsDouble(), 25e9);   // min(2 x 20, 25)
  EXPECT_NE(j.Get("machine_peak").Get("summary").AsString().find("FMA"), std::string::npos);
  for (size_t i = 0; i < profile_->layers.size(); ++i) {
    const LayerStats& l = profile_->layers[i];
    const Json& roof = j.Get("layer_timings").AsArray()[i].Get("roofline");
    if (l.fused) {
      EXPECT_TRUE(roof.is_null()) << l.info.name;
      continue;
    }
    if (l.info.type != "Convolution") continue;
    const double achieved = static_cast<double>(l.info.flops) / (l.median_ms / 1e3);
    EXPECT_NEAR(roof.Get("share_of_peak").AsDouble(), achieved / 150e9, 1e-9) << l.info.name;
    const double bytes =
        static_cast<double>(l.info.weight_bytes + l.info.input_bytes + l.info.blob_bytes);
    EXPECT_NEAR(roof.Get("intensity_flop_per_byte").AsDouble(),
                static_cast<double>(l.info.flops) / bytes, 1e-9)
        << l.info.name;
    EXPECT_EQ(roof.Get("bound").AsString(),
              static_cast<double>(l.info.flops) / bytes >= 150.0 / 25.0 ? "compute" : "memory")
        << l.info.name;
  }
  Json none =
      LayerProfileJson(*profile_, *net_, {"--model", "zero-filled", 1, 2, false}, Err("no time"));
  EXPECT_TRUE(none.Get("machine_peak").is_null());
  EXPECT_EQ(none.Get("machine_peak_reason").AsString(), "not measured: no time");
}

TEST(LayerFlopsTest, ShapesStandInWhereOpenCvSaysZero) {
  LayerInfo relu = Layer("ReLU", {1, 2, 3, 4});
  std::string source;
  EXPECT_EQ(LayerFlops(relu, &source), 24);
  EXPECT_NE(source.find("shapes"), std::string::npos);
  LayerInfo concat = Layer("Concat", {1, 2, 3, 4});
  EXPECT_EQ(LayerFlops(concat, &source), 0);
  EXPECT_EQ(source, "");
  LayerInfo softmax = Layer("Softmax", {1, 2, 3, 4});  // computes, but no formula here
  EXPECT_EQ(LayerFlops(softmax, &source), 0);
  EXPECT_EQ(source, kFlopsUnknown);
  LayerInfo conv = Layer("Convolution", {1}, 77);
  EXPECT_EQ(LayerFlops(conv, &source), 77);
  EXPECT_EQ(source, "opencv getFLOPS");
}

TEST(ModelNetTest, BadModelsAreClearErrors) {
  auto missing = ModelNet::Load(Spec("/nonexistent/yolo.cfg"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  char dir[] = "/tmp/fs_model_testXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string bad = std::string(dir) + "/bad.cfg";
  std::ofstream(bad) << "[net]\nwidth=416\nheight=416\n[convolutional]\nfilters=banana\n";
  auto malformed = ModelNet::Load(Spec(bad));
  EXPECT_FALSE(malformed.ok());
  const std::string txt = std::string(dir) + "/model.txt";
  std::ofstream(txt) << "hello\n";
  auto unknown = ModelNet::Load(Spec(txt));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown format"), std::string::npos);
  std::ofstream(std::string(dir) + "/bad.onnx") << "not protobuf";
  EXPECT_FALSE(ModelNet::Load(Spec(std::string(dir) + "/bad.onnx")).ok());
  auto net = ModelNet::Load(Spec(kTinyCfg, 96));
  ASSERT_TRUE(net.ok()) << net.status().message();
  EXPECT_FALSE(net->Forward(0).ok());
  EXPECT_TRUE(net->Forward(2).ok());
  std::system(("rm -rf " + std::string(dir)).c_str());
}

}  // namespace
}  // namespace fs::model
