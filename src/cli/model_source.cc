#include "src/cli/model_source.h"

#include "src/cli/cli.h"

namespace fs {

void AddModelFlags(FlagSet* flags, ModelFlags* f) {
  if (f->state_dir.empty()) f->state_dir = kDefaultStateDir;
  flags->String("state-dir", &f->state_dir,
                "the running system whose detection model is measured (default ./.framescope)");
  flags->String("model", &f->model, "a darknet .cfg or .onnx model instead of the system's");
  flags->String("cfg", &f->cfg, "a darknet .cfg instead of the system's (same as --model)");
  flags->String("weights", &f->weights,
                "darknet .weights for --model (default: zero-filled; timings do not depend on "
                "the values)");
  flags->String("input-size", &f->input_size,
                "network input, N or WxH (default: the system's, else the cfg's [net] size)");
  flags->Int("threads", &f->threads, "OpenCV threads (default: OpenCV's, as detection runs)");
}

}  // namespace fs
