#include "services/detection/yolo_decode.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace fs {
namespace {

// Appends one box given its centre form and best class, if it passes the threshold.
void Emit(float cx, float cy, float w, float h, int best, float score, const YoloDecodeOptions& o,
          std::vector<Detection>* out) {
  if (!(score >= o.conf_threshold) || !std::isfinite(cx) || !std::isfinite(cy) ||
      !std::isfinite(w) || !std::isfinite(h) || w <= 0 || h <= 0) {
    return;
  }
  if (o.normalized_coords) {
    cx *= static_cast<float>(o.input_width);
    w *= static_cast<float>(o.input_width);
    cy *= static_cast<float>(o.input_height);
    h *= static_cast<float>(o.input_height);
  }
  Detection d;
  d.class_id = best;
  d.score = score;
  d.x = cx - w / 2;
  d.y = cy - h / 2;
  d.w = w;
  d.h = h;
  out->push_back(std::move(d));
}

}  // namespace

void DecodeYoloRows(const float* data, size_t num_rows, size_t row_stride,
                    const YoloDecodeOptions& o, std::vector<Detection>* out) {
  if (o.num_classes <= 0 || row_stride < YoloAttributes(o)) return;
  const size_t first_class = o.has_objectness ? 5 : 4;
  const bool times_obj = o.has_objectness && o.score == YoloScore::kObjectnessTimesClass;
  for (size_t r = 0; r < num_rows; ++r) {
    const float* row = data + r * row_stride;
    const float* cls = row + first_class;
    int best = static_cast<int>(std::max_element(cls, cls + o.num_classes) - cls);
    float score = cls[best];
    if (times_obj) score *= row[4];
    Emit(row[0], row[1], row[2], row[3], best, score, o, out);
  }
}

void DecodeYoloColumns(const float* data, size_t num_boxes, const YoloDecodeOptions& o,
                       std::vector<Detection>* out) {
  if (o.num_classes <= 0) return;
  const size_t first_class = o.has_objectness ? 5 : 4;
  const bool times_obj = o.has_objectness && o.score == YoloScore::kObjectnessTimesClass;
  auto at = [&](size_t attribute, size_t box) { return data[attribute * num_boxes + box]; };
  for (size_t i = 0; i < num_boxes; ++i) {
    int best = 0;
    float score = at(first_class, i);
    for (int c = 1; c < o.num_classes; ++c) {
      float v = at(first_class + static_cast<size_t>(c), i);
      if (v > score) {
        score = v;
        best = c;
      }
    }
    if (times_obj) score *= at(4, i);
    Emit(at(0, i), at(1, i), at(2, i), at(3, i), best, score, o, out);
  }
}

bool DecodeYoloBatch(const float* data, const std::vector<int>& dims, int batch, YoloLayout layout,
                     const YoloDecodeOptions& options,
                     std::vector<std::vector<Detection>>* per_image) {
  BatchSlice slice = SliceBatch(dims, batch);
  if (slice.rows == 0) return false;
  const size_t attributes = YoloAttributes(options);
  // kRows: `rows` boxes of `stride` values; kColumns: `rows` attributes of `stride` boxes.
  if (layout == YoloLayout::kRows ? slice.stride < attributes : slice.rows < attributes) {
    return false;
  }
  if (per_image->size() < static_cast<size_t>(batch)) per_image->resize(batch);
  for (int b = 0; b < batch; ++b) {
    const float* image = data + static_cast<size_t>(b) * slice.rows * slice.stride;
    if (layout == YoloLayout::kRows) {
      DecodeYoloRows(image, slice.rows, slice.stride, options, &(*per_image)[b]);
    } else {
      DecodeYoloColumns(image, slice.stride, options, &(*per_image)[b]);
    }
  }
  return true;
}

float IoU(const Detection& a, const Detection& b) {
  if (a.w <= 0 || a.h <= 0 || b.w <= 0 || b.h <= 0) return 0;
  float ix = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  float iy = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = ix * iy;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

std::vector<Detection> NonMaxSuppression(std::vector<Detection> boxes, float iou_threshold,
                                         size_t max_detections) {
  std::vector<size_t> order(boxes.size());
  std::iota(order.begin(), order.end(), 0);
  // stable_sort keeps input order among equal scores: deterministic output.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return boxes[a].score > boxes[b].score; });
  std::vector<Detection> kept;
  for (size_t idx : order) {
    const Detection& cand = boxes[idx];
    bool suppressed = false;
    for (const Detection& k : kept) {
      if (k.class_id == cand.class_id && IoU(k, cand) > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    kept.push_back(std::move(boxes[idx]));
    if (max_detections != 0 && kept.size() >= max_detections) break;
  }
  return kept;
}

void ScaleDetections(int input_width, int input_height, int source_width, int source_height,
                     std::vector<Detection>* boxes) {
  const float sx = static_cast<float>(source_width) / static_cast<float>(input_width);
  const float sy = static_cast<float>(source_height) / static_cast<float>(input_height);
  const float fw = static_cast<float>(source_width);
  const float fh = static_cast<float>(source_height);
  for (Detection& d : *boxes) {
    float x0 = std::clamp(d.x * sx, 0.0f, fw);
    float y0 = std::clamp(d.y * sy, 0.0f, fh);
    float x1 = std::clamp((d.x + d.w) * sx, 0.0f, fw);
    float y1 = std::clamp((d.y + d.h) * sy, 0.0f, fh);
    d.x = x0;
    d.y = y0;
    d.w = x1 - x0;
    d.h = y1 - y0;
  }
}

BatchSlice SliceBatch(const std::vector<int>& dims, int batch) {
  if (batch <= 0) return {};
  for (int d : dims) {
    if (d <= 0) return {};
  }
  if (dims.size() == 2) {
    // [rows, K]: all images' rows stacked (batch 1 in OpenCV 4.6).
    if (dims[0] % batch != 0) return {};
    return {static_cast<size_t>(dims[0] / batch), static_cast<size_t>(dims[1])};
  }
  if (dims.size() == 3 && dims[0] == batch) {
    return {static_cast<size_t>(dims[1]), static_cast<size_t>(dims[2])};
  }
  return {};
}

}  // namespace fs
