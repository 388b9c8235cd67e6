#include "services/loadgen/scene.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <system_error>

namespace fs::loadgen {
namespace {

namespace stdfs = std::filesystem;

constexpr double kTwoPi = 6.283185307179586;

bool IsImageName(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* ext : {".jpg", ".jpeg", ".png"}) {
    const std::string e(ext);
    if (lower.size() > e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0) {
      return true;
    }
  }
  return false;
}

// A saturated colour that stands out against photographs (hue spread over the circle).
cv::Scalar VividColor(std::mt19937* rng) {
  std::uniform_int_distribution<int> hue(0, 179);
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue(*rng), 220, 235));
  cv::Mat bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b c = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(c[0], c[1], c[2]);
}

// Copies `src` onto `dst` with its top-left corner at `at`, clipped to dst's bounds.
void PasteClipped(const cv::Mat& src, cv::Point at, cv::Mat* dst) {
  const cv::Rect target = cv::Rect(at, src.size()) & cv::Rect(0, 0, dst->cols, dst->rows);
  if (target.empty()) return;
  const cv::Rect source(target.x - at.x, target.y - at.y, target.width, target.height);
  src(source).copyTo((*dst)(target));
}

// Largest rectangle of aspect `aspect` (w/h) that fits in `size`, scaled by `scale`.
cv::Size FitAspect(cv::Size size, double aspect, double scale) {
  int w = size.width;
  int h = static_cast<int>(w / aspect);
  if (h > size.height) {
    h = size.height;
    w = static_cast<int>(h * aspect);
  }
  w = std::clamp(static_cast<int>(w * scale), 8, size.width);
  h = std::clamp(static_cast<int>(h * scale), 8, size.height);
  return {w, h};
}

}  // namespace

StatusOr<ImageLibrary> LoadImageLibrary(const std::string& dir) {
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec)) {
    return Err("images directory " + dir +
               " does not exist or is not a directory (pass --images-dir with a folder of "
               ".jpg/.png photographs)");
  }
  std::vector<std::string> paths;
  for (const auto& entry : stdfs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && IsImageName(entry.path().filename().string())) {
      paths.push_back(entry.path().string());
    }
  }
  if (ec) return Err("cannot list images directory " + dir + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  ImageLibrary library;
  for (const std::string& path : paths) {
    cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
    if (image.empty() || image.cols < 32 || image.rows < 32) continue;  // unreadable: skip
    library.images.push_back(std::move(image));
    library.names.push_back(stdfs::path(path).filename().string());
  }
  if (library.empty()) {
    return Err("images directory " + dir + " contains no readable .jpg/.jpeg/.png image");
  }
  return library;
}

Scene::Scene(const SceneOptions& options, const ImageLibrary& library) : options_(options) {
  // Distinct, reproducible seed per camera (golden-ratio spread so neighbours differ a lot).
  const unsigned seed =
      0x9E3779B9u * static_cast<unsigned>(options_.camera_index + 1) ^ 0x5bd1e995u;
  BuildBackground(library, seed);
  BuildObjects(library, seed + 1);
}

void Scene::BuildBackground(const ImageLibrary& library, unsigned seed) {
  std::mt19937 rng(seed);
  const int w = options_.width;
  const int h = options_.height;
  const double aspect = static_cast<double>(w) / h;
  if (!library.empty()) {
    // Cycle through the photographs; cameras that share one see a different crop, mirror
    // and exposure of it, like two cameras looking at the same street.
    const int n = static_cast<int>(library.images.size());
    const cv::Mat& photo = library.images[static_cast<size_t>(options_.camera_index % n)];
    const int variant = options_.camera_index / n;
    std::uniform_real_distribution<double> scale(variant == 0 ? 0.85 : 0.55, 1.0);
    const cv::Size crop = FitAspect(photo.size(), aspect, scale(rng));
    std::uniform_int_distribution<int> x0(0, photo.cols - crop.width);
    std::uniform_int_distribution<int> y0(0, photo.rows - crop.height);
    const cv::Rect window(x0(rng), y0(rng), crop.width, crop.height);
    cv::resize(photo(window), background_, cv::Size(w, h), 0, 0,
               crop.width > w ? cv::INTER_AREA : cv::INTER_LINEAR);
    if (variant % 2 == 1) cv::flip(background_, background_, 1);
    std::uniform_real_distribution<double> gain(0.8, 1.15);
    std::uniform_real_distribution<double> offset(-18, 18);
    background_.convertTo(background_, -1, gain(rng), offset(rng));
    return;
  }
  // Generated street scene: sky gradient, buildings with windows, a road, sensor noise.
  background_.create(h, w, CV_8UC3);
  std::uniform_int_distribution<int> tone(40, 200);
  const cv::Scalar sky_top(tone(rng), tone(rng) / 2.0 + 60, 200);
  const cv::Scalar sky_bottom(230, 210, tone(rng));
  const int horizon = h * 5 / 8;
  for (int y = 0; y < h; ++y) {
    const double f = std::min(1.0, static_cast<double>(y) / horizon);
    const cv::Scalar c = y < horizon ? sky_top * (1 - f) + sky_bottom * f : cv::Scalar(70, 75, 80);
    cv::line(background_, {0, y}, {w - 1, y}, c);
  }
  std::uniform_int_distribution<int> bw(std::max(4, w / 14), std::max(5, w / 6));
  std::uniform_int_distribution<int> bh(h / 6, h / 2);
  for (int x = 0; x < w;) {
    const int width = bw(rng);
    const int height = bh(rng);
    const cv::Scalar wall(tone(rng) / 2.0 + 40, tone(rng) / 2.0 + 40, tone(rng) / 2.0 + 40);
    const cv::Rect building(x, horizon - height, width - 2, height);
    cv::rectangle(background_, building, wall, cv::FILLED);
    for (int wy = building.y + 6; wy + 6 < horizon; wy += 12) {
      for (int wx = building.x + 4; wx + 5 < building.x + building.width; wx += 10) {
        cv::rectangle(background_, cv::Rect(wx, wy, 5, 6), cv::Scalar(120, 200, 230), cv::FILLED);
      }
    }
    x += width;
  }
  cv::rectangle(background_, cv::Rect(0, horizon + h / 12, w, h / 6), cv::Scalar(50, 50, 55),
                cv::FILLED);
  for (int x = 0; x < w; x += w / 10) {
    cv::rectangle(background_, cv::Rect(x, horizon + h / 12 + h / 12 - 1, w / 20, 3),
                  cv::Scalar(230, 230, 230), cv::FILLED);
  }
  cv::Mat noise(h, w, CV_8UC3);
  cv::RNG cv_rng(seed);
  cv_rng.fill(noise, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(6));
  cv::add(background_, noise, background_);
}

void Scene::BuildObjects(const ImageLibrary& library, unsigned seed) {
  std::mt19937 rng(seed);
  const int w = options_.width;
  const int h = options_.height;
  std::uniform_int_distribution<int> count(4, 6);
  std::uniform_int_distribution<int> size(std::max(8, h / 10), std::max(10, h / 5));
  std::uniform_int_distribution<int> patch_size(std::max(10, h / 5), std::max(12, h / 3));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> cycles(1, 2);
  const int n = count(rng);
  for (int i = 0; i < n; ++i) {
    MovingObject o;
    // Two pasted photo crops per camera (things a detector might find), the rest shapes.
    if (i < 2 && !library.empty()) {
      o.shape = Shape::kPatch;
    } else {
      o.shape = static_cast<Shape>(i % 3);
    }
    // Photo crops are larger (a fifth to a third of the frame height): big enough for a
    // detector to find what is in them.
    o.h = o.shape == Shape::kPatch ? patch_size(rng) : size(rng);
    o.w = o.shape == Shape::kCircle ? o.h : static_cast<int>(o.h * (1.0 + unit(rng)));
    o.color = VividColor(&rng);
    if (o.shape == Shape::kPatch) {
      const cv::Mat& photo = library.images[rng() % library.images.size()];
      const cv::Size crop =
          FitAspect(photo.size(), static_cast<double>(o.w) / o.h, 0.3 + 0.4 * unit(rng));
      std::uniform_int_distribution<int> x0(0, photo.cols - crop.width);
      std::uniform_int_distribution<int> y0(0, photo.rows - crop.height);
      cv::resize(photo(cv::Rect(x0(rng), y0(rng), crop.width, crop.height)), o.patch,
                 cv::Size(o.w, o.h), 0, 0, cv::INTER_AREA);
      cv::rectangle(o.patch, cv::Rect(0, 0, o.w, o.h), o.color, 2);
    }
    o.path = i % 2 == 0 ? Path::kCrossing : Path::kLissajous;
    o.cx = w * (0.25 + 0.5 * unit(rng));
    o.cy = h * (0.2 + 0.6 * unit(rng));
    o.ax = w * (0.1 + 0.25 * unit(rng));
    o.ay = o.path == Path::kCrossing ? h * 0.03 * unit(rng) : h * (0.05 + 0.2 * unit(rng));
    o.cycles_x = cycles(rng);
    o.cycles_y = cycles(rng) + (o.path == Path::kCrossing ? 1 : 0);
    o.phase_x = unit(rng);
    o.phase_y = unit(rng);
    o.reverse = (rng() & 1) != 0;
    objects_.push_back(std::move(o));
  }
}

cv::Point Scene::Position(const MovingObject& o, double t) const {
  const double y_center = o.cy + o.ay * std::sin(kTwoPi * (o.cycles_y * t + o.phase_y));
  double x_left;
  if (o.path == Path::kCrossing) {
    // Fully off-screen at frac 0 and 1, so the wrap from one traversal to the next is unseen.
    const double frac = std::fmod(o.cycles_x * t + o.phase_x, 1.0);
    const double span = options_.width + o.w;
    x_left = o.reverse ? options_.width - frac * span : -o.w + frac * span;
  } else {
    x_left = o.cx + o.ax * std::sin(kTwoPi * (o.cycles_x * t + o.phase_x)) - o.w / 2.0;
  }
  return {static_cast<int>(std::lround(x_left)),
          static_cast<int>(std::lround(y_center - o.h / 2.0))};
}

void Scene::Render(int frame, cv::Mat* bgr) const {
  background_.copyTo(*bgr);
  const double t = static_cast<double>(frame) / options_.loop_frames;
  for (const MovingObject& o : objects_) {
    const cv::Point p = Position(o, t);
    const cv::Rect box(p.x, p.y, o.w, o.h);
    const cv::Scalar edge = o.color * 0.45;
    switch (o.shape) {
      case Shape::kCircle:
        cv::circle(*bgr, (box.tl() + box.br()) / 2, o.h / 2, o.color, cv::FILLED, cv::LINE_AA);
        cv::circle(*bgr, (box.tl() + box.br()) / 2, o.h / 2, edge, 2, cv::LINE_AA);
        break;
      case Shape::kBox:
        cv::rectangle(*bgr, box, o.color, cv::FILLED);
        cv::rectangle(*bgr, box, edge, 2);
        break;
      case Shape::kEllipse:
        cv::ellipse(*bgr, (box.tl() + box.br()) / 2, cv::Size(o.w / 2, o.h / 2), 0, 0, 360, o.color,
                    cv::FILLED, cv::LINE_AA);
        break;
      case Shape::kPatch:
        PasteClipped(o.patch, p, bgr);
        break;
    }
  }
  // Overlay: camera name, position in the loop and frame number, on a translucent band.
  char text[96];
  std::snprintf(text, sizeof(text), "%s  t=%06.3fs  frame %04d/%d", options_.camera_name.c_str(),
                static_cast<double>(frame) / options_.fps, frame, options_.loop_frames);
  const double scale = std::max(0.35, options_.height / 600.0);
  const int thickness = options_.height >= 540 ? 2 : 1;
  int baseline = 0;
  const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
  const cv::Rect band = cv::Rect(0, 0, ts.width + 12, ts.height + baseline + 10) &
                        cv::Rect(0, 0, bgr->cols, bgr->rows);
  cv::Mat roi = (*bgr)(band);
  roi.convertTo(roi, -1, 0.35, 0);
  cv::putText(*bgr, text, cv::Point(6, 5 + ts.height), cv::FONT_HERSHEY_SIMPLEX, scale,
              cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
}

}  // namespace fs::loadgen
