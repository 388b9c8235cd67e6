// Synthetic camera scenes for the load generator: a real photograph as the static background
// (a fixed camera), several objects moving on periodic paths, and a text overlay.
//
// Every path is periodic over the loop (integer cycles per loop), so frame `loop_frames` equals
// frame 0 and a stream that repeats the loop has no visible jump at the wrap. Each camera is
// seeded from its index: two cameras never show the same picture, and the same camera renders
// the same loop on every run (reproducible load).
#ifndef FRAMESCOPE_SERVICES_LOADGEN_SCENE_H_
#define FRAMESCOPE_SERVICES_LOADGEN_SCENE_H_

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::loadgen {

// Photographs shared read-only by every scene (decoded once at startup).
struct ImageLibrary {
  std::vector<cv::Mat> images;  // BGR, 8-bit
  std::vector<std::string> names;
  bool empty() const { return images.empty(); }
};

// Loads every .jpg/.jpeg/.png in `dir`, sorted by file name. Fails when the directory is
// missing or holds no readable image (the message names the directory).
StatusOr<ImageLibrary> LoadImageLibrary(const std::string& dir);

struct SceneOptions {
  int camera_index = 0;
  std::string camera_name = "cam00";
  int width = 640;
  int height = 360;
  int fps = 30;
  int loop_frames = 120;
};

class Scene {
 public:
  // With an empty `library` the background and pasted objects are generated instead.
  Scene(const SceneOptions& options, const ImageLibrary& library);

  // Draws frame `frame` (0 <= frame < loop_frames) into `bgr` (resized to width x height).
  // Const and thread-compatible: scenes of different cameras render in parallel.
  void Render(int frame, cv::Mat* bgr) const;

  const cv::Mat& background() const { return background_; }

 private:
  enum class Shape { kCircle, kBox, kEllipse, kPatch };
  enum class Path { kLissajous, kCrossing };
  struct MovingObject {
    Shape shape = Shape::kCircle;
    Path path = Path::kLissajous;
    int w = 20;
    int h = 20;
    cv::Scalar color;
    cv::Mat patch;  // kPatch only: w x h BGR crop of a photograph
    // kLissajous: centre (cx, cy) + amplitude * sin(2*pi*cycles*t + phase), t in [0, 1).
    // kCrossing: enters at one edge and leaves at the other `cycles_x` times per loop, at
    // height cy (+ a small vertical sway); `reverse` runs right to left.
    double cx = 0, cy = 0, ax = 0, ay = 0;
    int cycles_x = 1, cycles_y = 1;
    double phase_x = 0, phase_y = 0;
    bool reverse = false;
  };

  cv::Point Position(const MovingObject& o, double t) const;
  void BuildBackground(const ImageLibrary& library, unsigned seed);
  void BuildObjects(const ImageLibrary& library, unsigned seed);

  SceneOptions options_;
  cv::Mat background_;
  std::vector<MovingObject> objects_;
};

}  // namespace fs::loadgen

#endif  // FRAMESCOPE_SERVICES_LOADGEN_SCENE_H_
