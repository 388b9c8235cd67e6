// framescope-detection: reads camera frames from shared-memory rings, runs YOLO with
// dynamic batching on OpenCV DNN, publishes detections to a Redis Stream.
#include <cstdio>
#include <sstream>

#include "services/common/service.h"
#include "services/detection/detection_service.h"
#include "src/base/flags.h"
#include "src/base/logging.h"

int main(int argc, char** argv) {
  fs::ServiceRuntime runtime("detection");
  std::string rings, model = "/usr/share/darknet/cfg/yolov3-tiny.cfg", weights, cache_dir,
                     redis_url = "redis://127.0.0.1:6379", stream = "detections", names;
  int max_batch = 4, max_wait_ms = 10, input_size = 416;
  double conf = 0.25, nms = 0.45;
  fs::FlagSet flags(
      "framescope-detection",
      "Reads frames from capture's shared-memory rings (fair across cameras, newest first),\n"
      "batches them dynamically, runs YOLO on OpenCV DNN and publishes detections to the\n"
      "Redis Stream `detections` with pipelined XADD. Without --weights the weights are\n"
      "synthesised deterministically: detections are meaningless, the compute is real.");
  flags.String("rings", &rings, "comma-separated ring files written by framescope-capture");
  std::string camera_names;
  flags.String("camera-names", &camera_names,
               "comma-separated camera names, one per ring (default: from the ring file names)");
  flags.String("model", &model, "darknet .cfg or .onnx model");
  flags.String("weights", &weights, "darknet .weights (default: synthesised into --cache-dir)");
  flags.String("cache-dir", &cache_dir, "where synthesised weights are kept");
  flags.String("class-names", &names, "class names file (default: coco.names for 80 classes)");
  flags.Int("max-batch", &max_batch, "maximum frames per inference batch");
  flags.Int("max-wait-ms", &max_wait_ms, "maximum wait for a batch to fill");
  flags.Int("input-size", &input_size, "network input width and height (0 = from the model)");
  flags.Double("conf-threshold", &conf, "minimum detection score");
  flags.Double("nms-iou", &nms, "IoU above which same-class boxes are suppressed");
  flags.String("redis-url", &redis_url, "Redis to publish to");
  flags.String("stream", &stream, "Redis Stream name");
  runtime.AddFlags(&flags);
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (max_batch < 1 || max_batch > 64 || max_wait_ms < 0 || input_size < 0 ||
      input_size % 32 != 0) {
    fprintf(stderr,
            "framescope-detection: --max-batch must be 1..64, --max-wait-ms >= 0, "
            "--input-size a multiple of 32\n");
    return 2;
  }

  fs::DetectionServiceOptions opts;
  auto split = [](const std::string& list) {
    std::vector<std::string> out;
    std::stringstream ss(list);
    for (std::string item; std::getline(ss, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
    return out;
  };
  opts.ring_paths = split(rings);
  opts.camera_names = split(camera_names);
  if (!opts.camera_names.empty() && opts.camera_names.size() != opts.ring_paths.size()) {
    fprintf(stderr, "framescope-detection: --camera-names needs one name per ring\n");
    return 2;
  }
  opts.detector.model.model_path = model;
  opts.detector.model.weights_path = weights;
  opts.detector.model.cache_dir = cache_dir;
  opts.detector.model.input_width = input_size;
  opts.detector.model.input_height = input_size;
  opts.detector.conf_threshold = static_cast<float>(conf);
  opts.detector.nms_iou = static_cast<float>(nms);
  opts.detector.class_names_path = names;
  opts.batching.max_batch = max_batch;
  opts.batching.max_wait_ns = int64_t{max_wait_ms} * 1000000;
  opts.redis_url = redis_url;
  opts.stream = stream;

  fs::DetectionService service(opts);
  if (auto st = runtime.Start([&service] { return service.Health(); }); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  // /health reads `service` from HTTP threads: stop them before `service` goes away.
  if (auto st = service.Init(); !st.ok()) {
    LOG(ERROR) << st.message();
    runtime.http().Stop();
    return 1;
  }
  service.Run();
  runtime.http().Stop();
  LOG(INFO) << "stopped";
  return 0;
}
