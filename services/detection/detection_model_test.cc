// Tests for fs_detection_model: darknet cfg parsing and shapes, .weights synthesis and
// validation, YOLO decoding + NMS, the batching policy, and the OpenCV-backed Detector.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>
#include <vector>

#include "services/detection/batching_policy.h"
#include "services/detection/darknet_cfg.h"
#include "services/detection/darknet_weights.h"
#include "services/detection/detector.h"
#include "services/detection/weight_synthesis.h"
#include "services/detection/yolo_decode.h"
#include "src/base/file_util.h"

namespace fs {
namespace {

constexpr const char* kTinyCfg = "/usr/share/darknet/cfg/yolov3-tiny.cfg";
constexpr const char* kYolov3Cfg = "/usr/share/darknet/cfg/yolov3.cfg";
constexpr const char* kDogJpg = "/usr/share/darknet/data/dog.jpg";

#define SKIP_UNLESS_EXISTS(path)                   \
  if (!PathExists(path))                           \
  GTEST_SKIP() << (path)                           \
               << " is missing (install darknet: " \
                  "scripts/install-deps.sh)"

// A fresh directory under $TMPDIR, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/fs-detect-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* made = mkdtemp(buf.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A small YOLO-shaped net (two heads, 3 classes, a yolov4-tiny style grouped [route]) that
// synthesizes and runs through OpenCV in milliseconds.
constexpr const char* kSmallCfg = R"(
[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[route]
layers = -1
groups = 2
group_id = 1

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=8
activation=linear

[yolo]
mask = 1
anchors = 8,8, 24,24
classes=3
num=2

[route]
layers = -3

[upsample]
stride=2

[route]
layers = -1, 2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=8
activation=linear

[yolo]
mask = 0
anchors = 8,8, 24,24
classes=3
num=2
)";

// ---- cfg parsing ---------------------------------------------------------------------------

TEST(DarknetCfg, Yolov3TinyShapesAndParameterCount) {
  SKIP_UNLESS_EXISTS(kTinyCfg);
  StatusOr<DarknetModel> m = LoadDarknetCfg(kTinyCfg);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->input, (TensorShape{3, 416, 416}));
  ASSERT_EQ(m->layers.size(), 24u);
  EXPECT_EQ(m->layers[0].output, (TensorShape{16, 416, 416}));
  EXPECT_EQ(m->layers[1].output, (TensorShape{16, 208, 208}));
  EXPECT_EQ(m->layers[11].output, (TensorShape{512, 13, 13}));  // size 2 stride 1 maxpool
  EXPECT_EQ(m->layers[16].type, CfgLayerType::kYolo);
  EXPECT_EQ(m->layers[16].output, (TensorShape{255, 13, 13}));
  EXPECT_EQ(m->layers[17].inputs, std::vector<int>{13});       // layers = -4
  EXPECT_EQ(m->layers[20].inputs, (std::vector<int>{19, 8}));  // layers = -1, 8
  EXPECT_EQ(m->layers[20].output, (TensorShape{384, 26, 26}));
  EXPECT_EQ(m->layers[23].output, (TensorShape{255, 26, 26}));
  EXPECT_EQ(m->YoloLayers(), (std::vector<int>{16, 23}));
  EXPECT_EQ(m->NumClasses(), 80);
  EXPECT_EQ(m->layers[23].mask, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(m->layers[23].anchors.size(), 12u);
  // Biases + BN scale/mean/variance + weights, as darknet stores them: the published
  // yolov3-tiny.weights is 20 + 4 * 8,858,734 = 35,434,956 bytes.
  EXPECT_EQ(m->TotalParams(), 8858734);
  EXPECT_EQ(m->layers[0].params, 16 + 3 * 16 + 16 * 3 * 3 * 3);
  EXPECT_EQ(m->layers[15].params, 255 + 255 * 512);  // no batch norm: biases + weights
  EXPECT_EQ(ExpectedWeightsBytes(*m, DarknetWeightsHeader{}), 35434956);
}

TEST(DarknetCfg, Yolov3ParameterCount) {
  SKIP_UNLESS_EXISTS(kYolov3Cfg);
  StatusOr<DarknetModel> m = LoadDarknetCfg(kYolov3Cfg);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->layers.size(), 107u);
  EXPECT_EQ(m->TotalParams(), 62001757);  // published yolov3.weights: 248,007,048 bytes
  EXPECT_EQ(m->YoloLayers(), (std::vector<int>{82, 94, 106}));
  EXPECT_EQ(m->input, (TensorShape{3, 608, 608}));  // Debian's yolov3.cfg is 608x608
  EXPECT_EQ(m->layers[106].output, (TensorShape{255, 76, 76}));
}

TEST(DarknetCfg, InputSizeOverride) {
  SKIP_UNLESS_EXISTS(kTinyCfg);
  StatusOr<DarknetModel> m = LoadDarknetCfg(kTinyCfg, 320, 256);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->layers[16].output, (TensorShape{255, 8, 10}));
  EXPECT_EQ(m->TotalParams(), 8858734);
  // 400 is not a multiple of 32: the 13x13 branch upsamples to 26x26 but layer 8 is 25x25.
  StatusOr<DarknetModel> bad = LoadDarknetCfg(kTinyCfg, 400, 400);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("same height and width"), std::string::npos)
      << bad.status().message();
}

// yolov4-tiny's distinctive pieces: [route] with groups/group_id, and stride-2 convs.
TEST(DarknetCfg, RouteGroupsAndSyntax) {
  const std::string cfg =
      "# comment\n"
      "; another comment\n"
      "[net]\n"
      "width = 64\n"
      "height=32\n"
      "channels=3\n"
      "[convolutional]\n"
      "batch_normalize=1\n"
      "filters=32\n"
      "filters=64\n"  // the last occurrence wins, as in darknet
      "size=3\n"
      "stride=2\n"
      "pad=1\n"
      "activation=leaky\n"
      "\n"
      "[route]\n"
      "layers=-1\n"
      "groups=2\n"
      "group_id=1\n"
      "[convolutional]\n"
      "filters=32\n"
      "size=3\n"
      "stride=1\n"
      "pad=1\n"
      "groups=4\n"
      "activation=leaky\n"
      "[route]\n"
      "layers = -1,-2\n"
      "[shortcut]\n"
      "from=-4\n"
      "activation=linear\n"
      "[maxpool]\n"
      "size=2\n"
      "stride=2\n";
  StatusOr<DarknetModel> m = ParseDarknetCfg(cfg, "v4.cfg");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->layers.size(), 6u);
  EXPECT_EQ(m->input, (TensorShape{3, 32, 64}));
  EXPECT_EQ(m->layers[0].output, (TensorShape{64, 16, 32}));
  EXPECT_EQ(m->layers[1].output, (TensorShape{32, 16, 32}));  // half the channels
  EXPECT_EQ(m->layers[1].group_id, 1);
  EXPECT_EQ(m->layers[2].params, 32 + 32 * (32 / 4) * 3 * 3);  // grouped conv, no BN
  EXPECT_EQ(m->layers[3].output, (TensorShape{64, 16, 32}));
  EXPECT_EQ(m->layers[4].inputs, (std::vector<int>{3, 0}));
  EXPECT_EQ(m->layers[5].output, (TensorShape{64, 8, 16}));
}

TEST(DarknetCfg, ErrorsNameFileAndLine) {
  auto error = [](const std::string& text) {
    StatusOr<DarknetModel> m = ParseDarknetCfg(text, "bad.cfg");
    EXPECT_FALSE(m.ok());
    return m.ok() ? std::string() : m.status().message();
  };
  const std::string net = "[net]\nwidth=32\nheight=32\nchannels=3\n";  // lines 1-4
  std::string msg = error(net + "[convolutional]\nfilters=4\n\n[avgpool]\n");
  EXPECT_NE(msg.find("bad.cfg:8:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unsupported layer type [avgpool]"), std::string::npos) << msg;

  msg = error(net + "[convolutional]\nsize=3\nfilters=abc\n");
  EXPECT_NE(msg.find("bad.cfg:7:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("filters"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'abc'"), std::string::npos) << msg;

  msg = error(net + "[convolutional]\nfilters=4\n[route]\nlayers=-5\n");
  EXPECT_NE(msg.find("bad.cfg:8:"), std::string::npos) << msg;

  msg = error(net + "[convolutional]\nfilters=20\n[yolo]\nmask=0\nanchors=1,1\nclasses=80\n");
  EXPECT_NE(msg.find("bad.cfg:7:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("filters=85"), std::string::npos) << msg;

  msg = error("width=3\n[net]\n");
  EXPECT_NE(msg.find("bad.cfg:1:"), std::string::npos) << msg;

  msg = error("[convolutional]\nfilters=3\n");
  EXPECT_NE(msg.find("must be [net]"), std::string::npos) << msg;

  msg = error(net + "[convolutional]\nfilters=4\nthis line is wrong\n");
  EXPECT_NE(msg.find("bad.cfg:7:"), std::string::npos) << msg;

  msg = error("[net]\nwidth=32\nchannels=3\n[convolutional]\n");
  EXPECT_NE(msg.find("height"), std::string::npos) << msg;
}

TEST(DarknetCfg, MissingFile) {
  StatusOr<DarknetModel> m = LoadDarknetCfg("/nonexistent/dir/model.cfg");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("/nonexistent/dir/model.cfg"), std::string::npos);
}

// ---- weights -------------------------------------------------------------------------------

TEST(DarknetWeights, SynthesisIsDeterministic) {
  StatusOr<DarknetModel> m = ParseDarknetCfg(kSmallCfg, "small.cfg");
  ASSERT_TRUE(m.ok()) << m.status().message();
  SynthesisOptions a;
  a.seed = 7;
  StatusOr<std::string> first = SynthesizeWeightsFile(kSmallCfg, *m, a);
  StatusOr<std::string> second = SynthesizeWeightsFile(kSmallCfg, *m, a);
  SynthesisOptions b;
  b.seed = 8;
  StatusOr<std::string> other = SynthesizeWeightsFile(kSmallCfg, *m, b);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(second.ok() && other.ok());
  EXPECT_EQ(static_cast<int64_t>(first->size()), ExpectedWeightsBytes(*m, DarknetWeightsHeader{}));
  EXPECT_EQ(Fnv1a64(*first), Fnv1a64(*second));
  EXPECT_NE(Fnv1a64(*first), Fnv1a64(*other));
  EXPECT_EQ(other->size(), first->size());
  StatusOr<DarknetWeightsHeader> h = ParseWeightsHeader(*first, "synth");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->major * 10 + h->minor, 2);
  EXPECT_EQ(h->seen, SynthesisTag(kSmallCfg, 7));
  // Every value is finite.
  for (size_t off = 20; off < first->size(); off += 4) {
    float v;
    std::memcpy(&v, first->data() + off, 4);
    ASSERT_TRUE(std::isfinite(v)) << "offset " << off;
  }
}

TEST(DarknetWeights, ValidateReportsMissingShortAndLong) {
  StatusOr<DarknetModel> m = ParseDarknetCfg(kSmallCfg, "small.cfg");
  ASSERT_TRUE(m.ok());
  TempDir dir;
  const std::string path = dir.path() + "/w.weights";
  Status st = ValidateWeightsFile(path, *m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot be opened"), std::string::npos) << st.message();

  DarknetWeights w = SynthesizeDarknetWeights(*m, 1);
  std::string bytes = EncodeDarknetWeights(*m, w);
  ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  EXPECT_TRUE(ValidateWeightsFile(path, *m).ok());

  ASSERT_TRUE(WriteFileAtomic(path, bytes.substr(0, bytes.size() - 8)).ok());
  st = ValidateWeightsFile(path, *m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("too short"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2 parameters) missing"), std::string::npos) << st.message();

  ASSERT_TRUE(WriteFileAtomic(path, bytes + std::string(4, '\0')).ok());
  st = ValidateWeightsFile(path, *m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("too long"), std::string::npos) << st.message();

  // Version 0.1 headers store `seen` in 32 bits: the file is 4 bytes shorter.
  w.header.minor = 1;
  std::string v01 = EncodeDarknetWeights(*m, w);
  EXPECT_EQ(v01.size() + 4, bytes.size());
  ASSERT_TRUE(WriteFileAtomic(path, v01).ok());
  EXPECT_TRUE(ValidateWeightsFile(path, *m).ok());
}

TEST(DarknetWeights, EnsureSynthesizedCachesAndRefreshesStaleFiles) {
  TempDir dir;
  const std::string cfg_path = dir.path() + "/small.cfg";
  ASSERT_TRUE(WriteFileAtomic(cfg_path, kSmallCfg).ok());
  const std::string cache = dir.path() + "/cache";
  StatusOr<std::string> path = EnsureSynthesizedWeights(cfg_path, cache, 3);
  ASSERT_TRUE(path.ok()) << path.status().message();
  EXPECT_EQ(*path, cache + "/small-synth-3.weights");
  StatusOr<std::string> bytes = ReadFile(*path);
  ASSERT_TRUE(bytes.ok());

  struct stat before, after;
  ASSERT_EQ(stat(path->c_str(), &before), 0);
  ASSERT_TRUE(EnsureSynthesizedWeights(cfg_path, cache, 3).ok());
  ASSERT_EQ(stat(path->c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "a valid cached file must be reused";

  // Same size, wrong tag (e.g. an older synthesis version): regenerated.
  std::string stale = *bytes;
  stale[12] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomic(*path, stale).ok());
  ASSERT_TRUE(EnsureSynthesizedWeights(cfg_path, cache, 3).ok());
  EXPECT_EQ(ReadFile(*path).value(), *bytes);
}

// ---- decoding and NMS ----------------------------------------------------------------------

std::vector<float> Row(float cx, float cy, float w, float h, float obj,
                       std::vector<float> classes) {
  std::vector<float> r = {cx, cy, w, h, obj};
  r.insert(r.end(), classes.begin(), classes.end());
  return r;
}

TEST(YoloDecode, ThresholdsAndConvertsNormalizedCoordinates) {
  std::vector<float> t;
  for (auto r : {Row(0.5f, 0.5f, 0.25f, 0.5f, 0.9f, {0.0f, 0.8f, 0.1f}),
                 Row(0.1f, 0.1f, 0.1f, 0.1f, 0.9f, {0.2f, 0.0f, 0.24f}),  // below 0.25
                 Row(0.9f, 0.2f, 0.1f, 0.2f, 0.5f, {0.3f, 0.0f, 0.0f})}) {
    t.insert(t.end(), r.begin(), r.end());
  }
  YoloDecodeOptions o;
  o.num_classes = 3;
  o.input_width = 400;
  o.input_height = 200;
  std::vector<Detection> out;
  DecodeYoloRows(t.data(), 3, 8, o, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].class_id, 1);
  EXPECT_FLOAT_EQ(out[0].score, 0.8f);  // kClassIsFinal: objectness not applied again
  EXPECT_FLOAT_EQ(out[0].x, 150);
  EXPECT_FLOAT_EQ(out[0].y, 50);
  EXPECT_FLOAT_EQ(out[0].w, 100);
  EXPECT_FLOAT_EQ(out[0].h, 100);
  EXPECT_EQ(out[1].class_id, 0);

  // YOLOv5 ONNX: pixel coordinates, score = objectness * class.
  o.score = YoloScore::kObjectnessTimesClass;
  o.normalized_coords = false;
  out.clear();
  std::vector<float> px = Row(100, 50, 20, 10, 0.5f, {0.6f, 0.0f, 0.0f});
  DecodeYoloRows(px.data(), 1, 8, o, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FLOAT_EQ(out[0].score, 0.3f);
  EXPECT_FLOAT_EQ(out[0].x, 90);
  EXPECT_FLOAT_EQ(out[0].y, 45);
  o.conf_threshold = 0.31f;
  out.clear();
  DecodeYoloRows(px.data(), 1, 8, o, &out);
  EXPECT_TRUE(out.empty());

  // Non-finite and empty boxes are dropped.
  std::vector<float> bad = Row(NAN, 0.5f, 0.1f, 0.1f, 1, {1, 0, 0});
  std::vector<float> empty = Row(0.5f, 0.5f, 0.0f, 0.1f, 1, {1, 0, 0});
  out.clear();
  o = YoloDecodeOptions{};
  o.num_classes = 3;
  DecodeYoloRows(bad.data(), 1, 8, o, &out);
  DecodeYoloRows(empty.data(), 1, 8, o, &out);
  EXPECT_TRUE(out.empty());
}

TEST(YoloDecode, ColumnsLayoutWithoutObjectness) {
  // YOLOv8: [4 + C, N], C = 2, N = 3.
  const size_t n = 3;
  std::vector<float> t = {
      10,   50,   90,  // cx
      10,   50,   90,  // cy
      4,    8,    12,  // w
      4,    8,    12,  // h
      0.9f, 0.1f, 0,   // class 0
      0.2f, 0.7f, 0,   // class 1
  };
  YoloDecodeOptions o;
  o.num_classes = 2;
  o.has_objectness = false;
  o.normalized_coords = false;
  std::vector<Detection> out;
  DecodeYoloColumns(t.data(), n, o, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].class_id, 0);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);
  EXPECT_FLOAT_EQ(out[0].x, 8);
  EXPECT_EQ(out[1].class_id, 1);
  EXPECT_FLOAT_EQ(out[1].w, 8);
}

TEST(YoloDecode, BatchSplit) {
  // Two images, two rows each, C = 1: [2, 2, 6] and the equivalent stacked 2-D form.
  std::vector<float> t = {
      0.5f, 0.5f, 0.1f, 0.1f, 1, 0.9f,  // image 0
      0.5f, 0.5f, 0.1f, 0.1f, 1, 0.0f,  //
      0.2f, 0.2f, 0.1f, 0.1f, 1, 0.0f,  // image 1
      0.7f, 0.7f, 0.1f, 0.1f, 1, 0.6f,  //
  };
  YoloDecodeOptions o;
  o.num_classes = 1;
  o.input_width = o.input_height = 100;
  for (const std::vector<int>& dims : {std::vector<int>{2, 2, 6}, std::vector<int>{4, 6}}) {
    std::vector<std::vector<Detection>> per;
    ASSERT_TRUE(DecodeYoloBatch(t.data(), dims, 2, YoloLayout::kRows, o, &per));
    ASSERT_EQ(per.size(), 2u);
    ASSERT_EQ(per[0].size(), 1u);
    ASSERT_EQ(per[1].size(), 1u);
    EXPECT_FLOAT_EQ(per[0][0].score, 0.9f);
    EXPECT_FLOAT_EQ(per[1][0].x, 65);
  }
  std::vector<std::vector<Detection>> per;
  EXPECT_FALSE(DecodeYoloBatch(t.data(), {3, 2, 6}, 2, YoloLayout::kRows, o, &per));
  EXPECT_FALSE(DecodeYoloBatch(t.data(), {3, 8}, 2, YoloLayout::kRows, o, &per));
  o.num_classes = 2;  // 7 values per box do not fit rows of 6
  EXPECT_FALSE(DecodeYoloBatch(t.data(), {2, 2, 6}, 2, YoloLayout::kRows, o, &per));

  BatchSlice s = SliceBatch({2, 84, 8400}, 2);
  EXPECT_EQ(s.rows, 84u);
  EXPECT_EQ(s.stride, 8400u);
}

Detection Box(int cls, float score, float x, float y, float w, float h) {
  Detection d;
  d.class_id = cls;
  d.score = score;
  d.x = x;
  d.y = y;
  d.w = w;
  d.h = h;
  return d;
}

TEST(YoloDecode, IoU) {
  EXPECT_FLOAT_EQ(IoU(Box(0, 1, 0, 0, 10, 10), Box(0, 1, 0, 0, 10, 10)), 1.0f);
  EXPECT_FLOAT_EQ(IoU(Box(0, 1, 0, 0, 10, 10), Box(0, 1, 5, 0, 10, 10)), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(IoU(Box(0, 1, 0, 0, 10, 10), Box(0, 1, 10, 0, 10, 10)), 0.0f);
  EXPECT_FLOAT_EQ(IoU(Box(0, 1, 0, 0, 0, 10), Box(0, 1, 0, 0, 10, 10)), 0.0f);
}

TEST(YoloDecode, NmsSuppressesSameClassOnly) {
  std::vector<Detection> boxes = {
      Box(0, 0.6f, 1, 1, 10, 10),  // overlaps the 0.9 box of class 0: dropped
      Box(0, 0.9f, 0, 0, 10, 10),   Box(1, 0.8f, 0, 0, 10, 10),  // same place, other class: kept
      Box(0, 0.7f, 50, 50, 10, 10),                              // far away: kept
      Box(0, 0.5f, 6, 0, 10, 10),  // IoU 4/16 = 0.25 with the 0.9 box: kept
  };
  std::vector<Detection> kept = NonMaxSuppression(boxes, 0.45f);
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.9f);
  EXPECT_EQ(kept[1].class_id, 1);
  EXPECT_FLOAT_EQ(kept[2].score, 0.7f);
  EXPECT_FLOAT_EQ(kept[3].score, 0.5f);
  EXPECT_EQ(NonMaxSuppression(boxes, 0.45f, 2).size(), 2u);
  EXPECT_EQ(NonMaxSuppression(boxes, 0.2f).size(), 3u);  // now the 0.5 box goes too
  // Equal scores: the earlier box wins, deterministically.
  std::vector<Detection> ties = {Box(0, 0.5f, 0, 0, 10, 10), Box(0, 0.5f, 1, 0, 10, 10)};
  kept = NonMaxSuppression(ties, 0.45f);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_FLOAT_EQ(kept[0].x, 0);
}

TEST(YoloDecode, ScaleToSourceStretchesAndClips) {
  std::vector<Detection> boxes = {Box(0, 1, 104, 52, 208, 104), Box(0, 1, -10, 400, 40, 40)};
  ScaleDetections(416, 416, 832, 208, &boxes);  // x * 2, y * 0.5
  EXPECT_FLOAT_EQ(boxes[0].x, 208);
  EXPECT_FLOAT_EQ(boxes[0].y, 26);
  EXPECT_FLOAT_EQ(boxes[0].w, 416);
  EXPECT_FLOAT_EQ(boxes[0].h, 52);
  EXPECT_FLOAT_EQ(boxes[1].x, 0);   // clipped at the left edge
  EXPECT_FLOAT_EQ(boxes[1].w, 60);  // (-10 + 40) * 2
  EXPECT_FLOAT_EQ(boxes[1].y, 200);
  EXPECT_FLOAT_EQ(boxes[1].h, 8);  // bottom clipped at 208
}

// ---- batching policy -----------------------------------------------------------------------

constexpr int64_t kMs = 1'000'000;

TEST(BatchingPolicy, FullBatchDispatchesImmediately) {
  BatchingPolicy p({/*max_batch=*/4, /*max_wait_ns=*/10 * kMs});
  EXPECT_FALSE(p.Poll(0).dispatch);
  EXPECT_EQ(p.Poll(0).wait_until_ns, BatchingPolicy::kNever);
  for (int cam = 0; cam < 5; ++cam) p.OnFrame(cam, 1, 0);
  BatchingPolicy::Decision d = p.Poll(0);
  ASSERT_TRUE(d.dispatch);
  ASSERT_EQ(d.frames.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(d.frames[i].camera, i);
  EXPECT_EQ(p.pending(), 1u);
}

TEST(BatchingPolicy, PartialBatchWaitsForTheOldestFrame) {
  BatchingPolicy p({4, 10 * kMs});
  p.OnFrame(0, 1, 100 * kMs);
  p.OnFrame(1, 1, 104 * kMs);
  BatchingPolicy::Decision d = p.Poll(105 * kMs);
  EXPECT_FALSE(d.dispatch);
  EXPECT_EQ(d.wait_until_ns, 110 * kMs);
  // A newer frame from camera 0 does not restart its clock.
  p.OnFrame(0, 2, 108 * kMs);
  EXPECT_EQ(p.Poll(109 * kMs).wait_until_ns, 110 * kMs);
  d = p.Poll(110 * kMs);
  ASSERT_TRUE(d.dispatch);
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(d.frames[0].camera, 0);
  EXPECT_EQ(d.frames[0].seq, 2u);  // newest frame
  EXPECT_EQ(d.frames[0].first_pending_ns, 100 * kMs);
  EXPECT_EQ(p.skipped(), 1u);  // seq 1 of camera 0 was never dispatched
  EXPECT_EQ(p.pending(), 0u);
}

TEST(BatchingPolicy, CountsSkippedFramesFromSequenceGaps) {
  BatchingPolicy p({1, 0});
  p.OnFrame(7, 10, 0);
  ASSERT_TRUE(p.Poll(0).dispatch);
  EXPECT_EQ(p.skipped(), 0u);
  p.OnFrame(7, 11, 1);
  p.OnFrame(7, 11, 1);  // duplicate report: ignored
  p.OnFrame(7, 15, 2);  // 11..14 superseded
  BatchingPolicy::Decision d = p.Poll(2);
  ASSERT_TRUE(d.dispatch);
  EXPECT_EQ(d.frames[0].seq, 15u);
  EXPECT_EQ(p.skipped(), 4u);
  p.OnFrame(7, 15, 3);  // already served
  EXPECT_FALSE(p.Poll(3).dispatch);
  p.OnFrame(7, 2, 4);  // restarted numbering: accepted, no bogus skip count
  d = p.Poll(4);
  ASSERT_TRUE(d.dispatch);
  EXPECT_EQ(d.frames[0].seq, 2u);
  EXPECT_EQ(p.skipped(), 4u);
  EXPECT_EQ(p.dispatched_frames(), 3u);
  EXPECT_EQ(p.batches(), 3u);
}

TEST(BatchingPolicy, RoundRobinIsFairAcrossManyCameras) {
  const int n = 10;
  const int b = 4;
  BatchingPolicy p({b, 10 * kMs});
  std::vector<std::vector<int>> batches;
  uint64_t seq = 0;
  int64_t now = 0;
  for (int round = 0; round < 60; ++round) {
    ++seq;
    for (int cam = 0; cam < n; ++cam) p.OnFrame(cam, seq, now);  // every camera busy
    BatchingPolicy::Decision d = p.Poll(now);
    ASSERT_TRUE(d.dispatch);
    ASSERT_EQ(d.frames.size(), static_cast<size_t>(b));
    std::vector<int> cams;
    for (const auto& f : d.frames) cams.push_back(f.camera);
    batches.push_back(cams);
    now += kMs;
  }
  const int window = (n + b - 1) / b;  // ceil(N / B) = 3
  for (size_t start = 0; start + window <= batches.size(); ++start) {
    std::set<int> served;
    for (int i = 0; i < window; ++i)
      served.insert(batches[start + i].begin(), batches[start + i].end());
    EXPECT_EQ(served.size(), static_cast<size_t>(n)) << "window starting at batch " << start;
  }
  // Each camera got an equal share, and the frames it was not served in were skipped.
  std::map<int, int> count;
  for (const auto& cams : batches) {
    for (int c : cams) ++count[c];
  }
  for (int cam = 0; cam < n; ++cam) EXPECT_EQ(count[cam], 60 * b / n) << "camera " << cam;
  EXPECT_GT(p.skipped(), 0u);
}

TEST(BatchingPolicy, ServedCamerasGoToTheBack) {
  BatchingPolicy p({2, 0});
  for (int cam = 0; cam < 3; ++cam) p.OnFrame(cam, 1, 0);
  BatchingPolicy::Decision d = p.Poll(0);  // 0, 1
  ASSERT_EQ(d.frames.size(), 2u);
  p.OnFrame(0, 2, 1);
  p.OnFrame(1, 2, 1);
  d = p.Poll(1);  // camera 2 waited longest: it goes first
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(d.frames[0].camera, 2);
  EXPECT_EQ(d.frames[1].camera, 0);
  p.RemoveCamera(1);
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_FALSE(p.Poll(2).dispatch);
}

// ---- OpenCV: darknet ---------------------------------------------------------------------

TEST(Detector, Yolov3TinySynthesizedBatch1And2) {
  SKIP_UNLESS_EXISTS(kTinyCfg);
  SKIP_UNLESS_EXISTS(kDogJpg);
  TempDir dir;
  DetectorOptions o;
  o.model.model_path = kTinyCfg;
  o.model.cache_dir = dir.path();
  StatusOr<std::unique_ptr<Detector>> loaded = Detector::Load(o);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  Detector& det = **loaded;
  EXPECT_TRUE(det.model().synthesized_weights);
  EXPECT_EQ(det.model().weights_path, dir.path() + "/yolov3-tiny-synth-1.weights");
  EXPECT_EQ(det.input_width(), 416);
  EXPECT_EQ(det.input_height(), 416);
  EXPECT_EQ(det.model().output_names.size(), 2u);
  EXPECT_GT(det.num_layers(), 24);
  EXPECT_GT(det.Flops(1), 5'000'000'000);  // yolov3-tiny: ~5.6 GFLOP at 416x416

  cv::Mat src = cv::imread(kDogJpg);
  ASSERT_FALSE(src.empty());
  cv::Mat input;
  cv::resize(src, input, cv::Size(416, 416));
  FrameInput frame{input.data, static_cast<int>(input.step), src.cols, src.rows};

  StatusOr<InferResult> one = det.Infer({frame});
  ASSERT_TRUE(one.ok()) << one.status().message();
  ASSERT_EQ(one->detections.size(), 1u);
  const std::vector<Detection>& d1 = one->detections[0];
  // Synthesized weights are calibrated to give a handful of (meaningless) boxes per photo.
  EXPECT_GE(d1.size(), 1u);
  EXPECT_LE(d1.size(), 30u);
  for (const Detection& d : d1) {
    EXPECT_GE(d.score, 0.25f);
    EXPECT_LE(d.score, 1.0f);
    EXPECT_GE(d.class_id, 0);
    EXPECT_LT(d.class_id, 80);
    EXPECT_FALSE(d.class_name.empty());
    EXPECT_GE(d.x, 0);
    EXPECT_GE(d.y, 0);
    EXPECT_GT(d.w, 0);
    EXPECT_GT(d.h, 0);
    EXPECT_LE(d.x + d.w, src.cols + 0.01f);
    EXPECT_LE(d.y + d.h, src.rows + 0.01f);
  }
  EXPECT_GT(one->timing.forward_s, 0);
  EXPECT_GT(one->timing.preprocess_s, 0);
  std::vector<LayerTiming> layers = det.LastLayerTimings();
  ASSERT_FALSE(layers.empty());
  EXPECT_EQ(layers.front().name, "conv_0");
  EXPECT_EQ(layers.front().type, "Convolution");

  // Batch 2 of the same image: the same boxes for both (OpenCV returns [2, rows, 85]).
  StatusOr<InferResult> two = det.Infer({frame, frame});
  ASSERT_TRUE(two.ok()) << two.status().message();
  ASSERT_EQ(two->detections.size(), 2u);
  for (const std::vector<Detection>& d2 : two->detections) {
    ASSERT_EQ(d2.size(), d1.size());
    for (size_t i = 0; i < d1.size(); ++i) {
      EXPECT_EQ(d2[i].class_id, d1[i].class_id);
      EXPECT_NEAR(d2[i].score, d1[i].score, 1e-4);
      EXPECT_NEAR(d2[i].x, d1[i].x, 0.05);
      EXPECT_NEAR(d2[i].y, d1[i].y, 0.05);
      EXPECT_NEAR(d2[i].w, d1[i].w, 0.05);
      EXPECT_NEAR(d2[i].h, d1[i].h, 0.05);
    }
  }

  // The raw layout this relies on: 2-D [rows, 85] at batch 1, 3-D [B, rows, 85] above.
  cv::dnn::Net net = det.model().net;
  std::vector<cv::Mat> outs;
  net.setInput(cv::dnn::blobFromImage(input, 1 / 255.0, cv::Size(), cv::Scalar(), true));
  net.forward(outs, det.model().output_names);
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0].dims, 2);
  EXPECT_EQ(outs[0].size[0], 13 * 13 * 3);
  EXPECT_EQ(outs[0].size[1], 85);
  std::vector<cv::Mat> batch2 = {input, input};
  net.setInput(cv::dnn::blobFromImages(batch2, 1 / 255.0, cv::Size(), cv::Scalar(), true));
  net.forward(outs, det.model().output_names);
  EXPECT_EQ(outs[1].dims, 3);
  EXPECT_EQ(outs[1].size[0], 2);
  EXPECT_EQ(outs[1].size[1], 26 * 26 * 3);
  EXPECT_EQ(outs[1].size[2], 85);

  // Bad input is an error, not a crash.
  EXPECT_FALSE(det.Infer({}).ok());
  EXPECT_FALSE(det.Infer({FrameInput{nullptr, 0, 640, 360}}).ok());

  // Another input size reuses the cached weights (they do not depend on it); non-square
  // inputs work and boxes still land inside the source frame.
  o.model.input_width = 320;
  o.model.input_height = 192;
  StatusOr<std::unique_ptr<Detector>> small = Detector::Load(o);
  ASSERT_TRUE(small.ok()) << small.status().message();
  EXPECT_EQ((*small)->model().weights_path, det.model().weights_path);
  cv::Mat input2;
  cv::resize(src, input2, cv::Size(320, 192));
  StatusOr<InferResult> r = (*small)->Infer({FrameInput{input2.data, 0, src.cols, src.rows}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const Detection& d : r->detections[0]) {
    EXPECT_LE(d.x + d.w, src.cols + 0.01f);
    EXPECT_LE(d.y + d.h, src.rows + 0.01f);
  }
}

TEST(Detector, LoadErrors) {
  TempDir dir;
  DetectorOptions o;
  o.model.model_path = dir.path() + "/missing.cfg";
  StatusOr<std::unique_ptr<Detector>> d = Detector::Load(o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("does not exist"), std::string::npos);

  SKIP_UNLESS_EXISTS(kTinyCfg);
  o.model.model_path = kTinyCfg;
  o.model.weights_path = dir.path() + "/short.weights";
  ASSERT_TRUE(WriteFileAtomic(o.model.weights_path, std::string(1000, '\0')).ok());
  d = Detector::Load(o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("too short"), std::string::npos) << d.status().message();

  o.model.weights_path.clear();
  o.model.input_width = o.model.input_height = 400;  // not a multiple of 32
  d = Detector::Load(o);
  EXPECT_FALSE(d.ok());
}

// ---- OpenCV: ONNX --------------------------------------------------------------------------
// A hand-encoded ONNX model stands in for YOLOv5/v8 exports (no exporter or weights here):
// a strided Conv with zero weights whose biases are one fixed detection row, reshaped to
// [B, N, 5+C] (v5) or [B, 4+C, N] (v8). Every grid cell then predicts the same box.

class Proto {
 public:
  Proto& Varint(int field, uint64_t v) {
    Key(field, 0);
    PutVarint(v);
    return *this;
  }
  Proto& Bytes(int field, const std::string& s) {
    Key(field, 2);
    PutVarint(s.size());
    out_ += s;
    return *this;
  }
  Proto& Msg(int field, const Proto& p) { return Bytes(field, p.out_); }
  Proto& Float(int field, float f) {
    Key(field, 5);
    out_.append(reinterpret_cast<const char*>(&f), 4);
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  void Key(int field, int wire) { PutVarint((static_cast<uint64_t>(field) << 3) | wire); }
  void PutVarint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

Proto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                  const std::vector<float>& values) {
  Proto t;
  for (int64_t d : dims) t.Varint(1, static_cast<uint64_t>(d));
  t.Varint(2, 1);  // FLOAT
  t.Bytes(8, name);
  t.Bytes(9, std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  return t;
}

Proto Int64Tensor(const std::string& name, const std::vector<int64_t>& values) {
  Proto t;
  t.Varint(1, values.size());
  t.Varint(2, 7);  // INT64
  t.Bytes(8, name);
  t.Bytes(9, std::string(reinterpret_cast<const char*>(values.data()), values.size() * 8));
  return t;
}

Proto ValueInfo(const std::string& name, const std::vector<int64_t>& dims) {
  Proto shape;
  for (int64_t d : dims) {
    Proto dim;
    if (d < 0) {
      dim.Bytes(2, "batch");
    } else {
      dim.Varint(1, static_cast<uint64_t>(d));
    }
    shape.Msg(1, dim);
  }
  Proto tensor;
  tensor.Varint(1, 1).Msg(2, shape);
  Proto type;
  type.Msg(1, tensor);
  Proto vi;
  vi.Bytes(1, name).Msg(2, type);
  return vi;
}

Proto Node(const std::string& op, const std::vector<std::string>& in, const std::string& out,
           const std::vector<Proto>& attributes = {}) {
  Proto n;
  for (const std::string& i : in) n.Bytes(1, i);
  n.Bytes(2, out).Bytes(3, out + "_node").Bytes(4, op);
  for (const Proto& a : attributes) n.Msg(5, a);
  return n;
}

Proto IntsAttr(const std::string& name, const std::vector<int64_t>& v) {
  Proto a;
  a.Bytes(1, name);
  for (int64_t x : v) a.Varint(8, static_cast<uint64_t>(x));
  a.Varint(20, 7);  // INTS
  return a;
}

// Input [B, 3, size, size]; Conv kernel = stride = `cell` -> a (size/cell)^2 grid of
// `bias.size()` channels, every cell equal to `bias`.
std::string MakeOnnxYolo(int size, int cell, const std::vector<float>& bias, bool v8) {
  const int64_t k = static_cast<int64_t>(bias.size());
  const int64_t n = (size / cell) * (size / cell);
  Proto graph;
  graph.Msg(1, Node("Conv", {"images", "W", "B"}, "conv",
                    {IntsAttr("kernel_shape", {cell, cell}), IntsAttr("strides", {cell, cell})}));
  graph.Msg(1, Node("Reshape", {"conv", "shape"}, v8 ? "output" : "flat"));
  if (!v8) graph.Msg(1, Node("Transpose", {"flat"}, "output", {IntsAttr("perm", {0, 2, 1})}));
  graph.Bytes(2, "tiny_yolo");
  graph.Msg(5, FloatTensor("W", {k, 3, cell, cell}, std::vector<float>(k * 3 * cell * cell, 0)));
  graph.Msg(5, FloatTensor("B", {k}, bias));
  graph.Msg(5, Int64Tensor("shape", {-1, k, n}));
  graph.Msg(11, ValueInfo("images", {1, 3, size, size}));
  graph.Msg(
      12, ValueInfo("output", v8 ? std::vector<int64_t>{1, k, n} : std::vector<int64_t>{1, n, k}));
  Proto opset;
  opset.Bytes(1, "").Varint(2, 11);
  Proto model;
  model.Varint(1, 7).Bytes(2, "framescope-test").Msg(7, graph).Msg(8, opset);
  return model.str();
}

TEST(Detector, OnnxYoloV5AndV8Layouts) {
  TempDir dir;
  const int size = 64;
  // v5 row: box centred at (20, 30), 16x8 px, objectness 0.8, class 2 prob 0.5 -> 0.4.
  std::vector<float> v5 = {20, 30, 16, 8, 0.8f, 0.1f, 0.0f, 0.5f};
  // v8 column: same box, class 1 score 0.7, no objectness. OnnxHead::kAuto reads [B, K, N]
  // as v8 when K < N, so use 2x2 cells -> N = 1024 boxes.
  std::vector<float> v8 = {20, 30, 16, 8, 0.1f, 0.7f};
  const std::string v5_path = dir.path() + "/v5.onnx";
  const std::string v8_path = dir.path() + "/v8.onnx";
  ASSERT_TRUE(WriteFileAtomic(v5_path, MakeOnnxYolo(size, 8, v5, false)).ok());
  ASSERT_TRUE(WriteFileAtomic(v8_path, MakeOnnxYolo(size, 2, v8, true)).ok());

  std::vector<uint8_t> pixels(size * size * 3, 128);
  FrameInput frame{pixels.data(), 0, 2 * size, size};  // source twice as wide

  for (bool is_v8 : {false, true}) {
    SCOPED_TRACE(is_v8 ? "v8" : "v5");
    DetectorOptions o;
    o.model.model_path = is_v8 ? v8_path : v5_path;
    o.model.input_width = o.model.input_height = size;
    o.class_names_path = dir.path() + "/names.txt";
    ASSERT_TRUE(WriteFileAtomic(o.class_names_path, "a\nb\nc\n").ok());
    StatusOr<std::unique_ptr<Detector>> d = Detector::Load(o);
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ((*d)->model().format, ModelFormat::kOnnx);
    StatusOr<InferResult> r = (*d)->Infer({frame});
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->detections.size(), 1u);
    // Every cell predicted the same box: NMS leaves one.
    ASSERT_EQ(r->detections[0].size(), 1u);
    const Detection& det = r->detections[0][0];
    EXPECT_EQ(det.class_id, is_v8 ? 1 : 2);
    EXPECT_EQ(det.class_name, is_v8 ? "b" : "c");
    EXPECT_NEAR(det.score, is_v8 ? 0.7 : 0.4, 1e-5);
    EXPECT_NEAR(det.x, (20 - 8) * 2, 1e-3);  // x scaled by source/input = 2
    EXPECT_NEAR(det.y, 30 - 4, 1e-3);
    EXPECT_NEAR(det.w, 32, 1e-3);
    EXPECT_NEAR(det.h, 8, 1e-3);
    EXPECT_EQ((*d)->model().num_classes, is_v8 ? 2 : 3);

    StatusOr<InferResult> two = (*d)->Infer({frame, frame});
    ASSERT_TRUE(two.ok()) << two.status().message();
    ASSERT_EQ(two->detections.size(), 2u);
    EXPECT_EQ(two->detections[1].size(), 1u);
  }
}

}  // namespace
}  // namespace fs
