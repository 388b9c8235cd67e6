#include "services/detection/model_bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <vector>

#include "services/detection/detector.h"
#include "services/detection/weight_synthesis.h"
#include "src/base/clock.h"
#include "src/base/flags.h"
#include "src/base/json.h"
#include "src/base/logging.h"
#include "src/base/stats.h"

namespace fs {

int ModelBenchMain(int argc, char** argv) {
  SetLogTag("modelbench");
  std::string model = "/usr/share/darknet/cfg/yolov3-tiny.cfg";
  std::string weights;
  std::string cache_dir;
  std::string input_size;
  int seed = 1;
  int batch = 1;
  double seconds = 10;
  int forwards = 0;
  int warmup = 2;
  int threads = 0;
  bool json = false;
  FlagSet flags("framescope-modelbench",
                "Measures raw net.forward() throughput (OpenCV DNN, CPU) of the model the\n"
                "detection service would load, on a fixed batch of a synthetic image.\n"
                "Prints images/s and ms per forward (median, p10, p90).");
  flags.String("model", &model, "darknet .cfg or .onnx model");
  flags.String("weights", &weights, "darknet .weights (empty: synthesized, meaningless)");
  flags.String("cache-dir", &cache_dir, "where synthesized weights are cached (empty: default)");
  flags.Int("seed", &seed, "seed for synthesized weights");
  flags.String("input-size", &input_size, "network input, N or WxH (empty: from the cfg)");
  flags.Int("batch", &batch, "images per forward");
  flags.Double("seconds", &seconds, "measure for this long (after warm-up)");
  flags.Int("forwards", &forwards,
            "a fixed amount of work instead: exactly N timed forwards (overrides --seconds)");
  flags.Int("warmup", &warmup, "untimed forwards first (OpenCV allocates on the first)");
  flags.Int("threads", &threads, "cv::setNumThreads (0: OpenCV's default)");
  flags.Bool("json", &json, "print one JSON object instead of text");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (batch < 1 || !(seconds > 0) || warmup < 0 || seed < 0 || forwards < 0) {
    fprintf(stderr,
            "framescope-modelbench: --batch >= 1, --seconds > 0, --warmup >= 0, --forwards >= 0\n");
    return 2;
  }
  ModelOptions mo;
  mo.model_path = model;
  mo.weights_path = weights;
  mo.cache_dir = cache_dir;
  mo.synth_seed = static_cast<uint64_t>(seed);
  if (!input_size.empty()) {
    Status st = input_size.find('x') != std::string::npos
                    ? ParseResolution(input_size, &mo.input_width, &mo.input_height)
                    : Status::Ok();
    if (input_size.find('x') == std::string::npos) {
      mo.input_width = mo.input_height = std::atoi(input_size.c_str());
      if (mo.input_width <= 0) st = Err("bad --input-size " + input_size);
    }
    if (!st.ok()) {
      fprintf(stderr, "framescope-modelbench: %s\n", st.message().c_str());
      return 2;
    }
  }
  if (threads > 0) cv::setNumThreads(threads);
  int64_t load_start = MonotonicNs();
  StatusOr<LoadedModel> loaded = LoadModel(mo);
  if (!loaded.ok()) {
    fprintf(stderr, "framescope-modelbench: %s\n", loaded.status().message().c_str());
    return 1;
  }
  double load_s = static_cast<double>(MonotonicNs() - load_start) * 1e-9;
  LoadedModel& m = *loaded;
  std::vector<double> forward_ms;
  int64_t flops = 0;
  double measured_s = 0;  // wall time of the timed loop
  try {
    std::vector<uint8_t> px = MakeCalibrationImage(7, m.input_width, m.input_height);
    cv::Mat image(m.input_height, m.input_width, CV_8UC3, px.data());
    std::vector<cv::Mat> images(batch, image);
    cv::Mat blob = cv::dnn::blobFromImages(
        images, 1.0 / 255.0, cv::Size(m.input_width, m.input_height), cv::Scalar(), true, false);
    flops = m.net.getFLOPS(cv::dnn::MatShape{batch, 3, m.input_height, m.input_width});
    std::vector<cv::Mat> outs;
    for (int i = 0; i < warmup; ++i) {
      m.net.setInput(blob);
      m.net.forward(outs, m.output_names);
    }
    int64_t start = MonotonicNs();
    const int64_t budget = static_cast<int64_t>(seconds * 1e9);
    auto more = [&] {
      if (forwards > 0) return forward_ms.size() < static_cast<size_t>(forwards);
      return forward_ms.empty() || MonotonicNs() - start < budget;
    };
    while (more()) {
      int64_t t0 = MonotonicNs();
      m.net.setInput(blob);
      m.net.forward(outs, m.output_names);
      forward_ms.push_back(static_cast<double>(MonotonicNs() - t0) * 1e-6);
    }
    measured_s = static_cast<double>(MonotonicNs() - start) * 1e-9;
  } catch (const cv::Exception& e) {
    fprintf(stderr, "framescope-modelbench: forward failed: %s\n", e.what());
    return 1;
  }
  double median = Percentile(forward_ms, 0.5);
  double p10 = Percentile(forward_ms, 0.1);
  double p90 = Percentile(forward_ms, 0.9);
  double images_per_s = median > 0 ? batch * 1000.0 / median : 0;
  // Sustained: every image over the whole timed loop, directly comparable with a pipeline's
  // frames per second over a window (the median hides slow forwards).
  double images_per_s_sustained =
      measured_s > 0
          ? static_cast<double>(batch) * static_cast<double>(forward_ms.size()) / measured_s
          : 0;
  if (json) {
    Json j = Json::MakeObject();
    j["model"] = model;
    j["weights"] = m.weights_path;
    j["synthesized_weights"] = m.synthesized_weights;
    j["input_width"] = m.input_width;
    j["input_height"] = m.input_height;
    j["batch"] = batch;
    j["threads"] = cv::getNumThreads();
    j["forwards"] = static_cast<int64_t>(forward_ms.size());
    j["measured_s"] = measured_s;
    // When the fixed work ended, on CLOCK_MONOTONIC: a benchmark that wraps this program in a
    // profiler measures the profiler's post-processing from here to the profiler's exit.
    j["end_monotonic_ns"] = MonotonicNs();
    j["ms_per_forward_median"] = median;
    j["ms_per_forward_p10"] = p10;
    j["ms_per_forward_p90"] = p90;
    j["images_per_s"] = images_per_s;
    j["images_per_s_sustained"] = images_per_s_sustained;
    j["gflops_per_forward"] = static_cast<double>(flops) * 1e-9;
    j["load_s"] = load_s;
    printf("%s\n", j.Dump(2).c_str());
  } else {
    printf("model        %s\n", m.Describe().c_str());
    printf("batch        %d  (OpenCV threads %d)\n", batch, cv::getNumThreads());
    printf("forwards     %zu in %.2f s\n", forward_ms.size(), measured_s);
    printf("ms/forward   median %.2f  p10 %.2f  p90 %.2f\n", median, p10, p90);
    printf("images/s     %.2f median-based, %.2f sustained  (%.2f GFLOP per forward)\n",
           images_per_s, images_per_s_sustained, static_cast<double>(flops) * 1e-9);
  }
  return 0;
}

}  // namespace fs
