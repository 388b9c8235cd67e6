#include "services/detection/darknet_cfg.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "src/base/file_util.h"

namespace fs {
namespace {

std::string Where(const std::string& origin, int line) {
  return origin + ":" + std::to_string(line) + ": ";
}

std::string StripAllSpace(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (!std::isspace(static_cast<unsigned char>(ch))) out.push_back(ch);
  }
  return out;
}

// Typed, line-aware access to one section's options.
class OptionReader {
 public:
  OptionReader(const CfgSection& section, const std::string& origin)
      : section_(section), origin_(origin) {}

  bool Has(const std::string& key) const { return section_.Find(key) != nullptr; }

  Status Int(const std::string& key, int def, int* out) const {
    const CfgSection::Option* opt = section_.Find(key);
    if (opt == nullptr) {
      *out = def;
      return Status::Ok();
    }
    return ParseInt(*opt, opt->value, out);
  }

  Status Float(const std::string& key, float def, float* out) const {
    const CfgSection::Option* opt = section_.Find(key);
    if (opt == nullptr) {
      *out = def;
      return Status::Ok();
    }
    return ParseFloat(*opt, opt->value, out);
  }

  Status String(const std::string& key, const std::string& def, std::string* out) const {
    const CfgSection::Option* opt = section_.Find(key);
    *out = opt == nullptr ? def : opt->value;
    return Status::Ok();
  }

  // Comma-separated integers; `present` reports whether the key exists at all.
  Status IntList(const std::string& key, std::vector<int>* out, bool* present) const {
    out->clear();
    const CfgSection::Option* opt = section_.Find(key);
    *present = opt != nullptr;
    if (opt == nullptr) return Status::Ok();
    for (const std::string& item : Split(opt->value)) {
      int v = 0;
      RETURN_IF_ERROR(ParseInt(*opt, item, &v));
      out->push_back(v);
    }
    return Status::Ok();
  }

  Status FloatList(const std::string& key, std::vector<float>* out) const {
    out->clear();
    const CfgSection::Option* opt = section_.Find(key);
    if (opt == nullptr) return Status::Ok();
    for (const std::string& item : Split(opt->value)) {
      float v = 0;
      RETURN_IF_ERROR(ParseFloat(*opt, item, &v));
      out->push_back(v);
    }
    return Status::Ok();
  }

  // An error at the section header (for problems not tied to one key).
  Status Error(const std::string& what) const {
    return Err(Where(origin_, section_.line) + "[" + section_.type + "]: " + what);
  }
  // An error at the line of `key` (or the header when absent).
  Status KeyError(const std::string& key, const std::string& what) const {
    const CfgSection::Option* opt = section_.Find(key);
    int line = opt != nullptr ? opt->line : section_.line;
    return Err(Where(origin_, line) + "[" + section_.type + "] " + key + ": " + what);
  }

 private:
  static std::vector<std::string> Split(const std::string& s) {
    std::vector<std::string> items;
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, ',')) {
      if (!cur.empty()) items.push_back(cur);
    }
    return items;
  }

  Status ParseInt(const CfgSection::Option& opt, const std::string& text, int* out) const {
    const char* begin = text.data();
    const char* end = begin + text.size();
    if (begin != end && *begin == '+') ++begin;
    auto [ptr, ec] = std::from_chars(begin, end, *out);
    if (ec != std::errc() || ptr != end || begin == end) {
      return Err(Where(origin_, opt.line) + "[" + section_.type + "] " + opt.key +
                 ": expected an integer, got '" + text + "'");
    }
    return Status::Ok();
  }

  Status ParseFloat(const CfgSection::Option& opt, const std::string& text, float* out) const {
    char* end = nullptr;
    errno = 0;
    float v = std::strtof(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !std::isfinite(v)) {
      return Err(Where(origin_, opt.line) + "[" + section_.type + "] " + opt.key +
                 ": expected a number, got '" + text + "'");
    }
    *out = v;
    return Status::Ok();
  }

  const CfgSection& section_;
  const std::string& origin_;
};

std::string ShapeText(const TensorShape& s) {
  return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

// Resolves a darknet layer reference: negative is relative to `current`, else absolute.
Status ResolveIndex(const OptionReader& r, const std::string& key, int ref, int current, int* out) {
  int idx = ref < 0 ? current + ref : ref;
  if (idx < 0 || idx >= current) {
    return r.KeyError(key, "refers to layer " + std::to_string(idx) + " (from " +
                               std::to_string(ref) + "), but only layers 0.." +
                               std::to_string(current - 1) + " precede layer " +
                               std::to_string(current));
  }
  *out = idx;
  return Status::Ok();
}

Status ParseConvolutional(const OptionReader& r, const TensorShape& in, CfgLayer* l) {
  int pad = 0;
  int bn = 0;
  RETURN_IF_ERROR(r.Int("filters", 1, &l->filters));
  RETURN_IF_ERROR(r.Int("size", 1, &l->size));
  RETURN_IF_ERROR(r.Int("stride", 1, &l->stride));
  RETURN_IF_ERROR(r.Int("pad", 0, &pad));
  RETURN_IF_ERROR(r.Int("padding", 0, &l->padding));
  RETURN_IF_ERROR(r.Int("groups", 1, &l->groups));
  RETURN_IF_ERROR(r.Int("batch_normalize", 0, &bn));
  RETURN_IF_ERROR(r.String("activation", "logistic", &l->activation));
  int dilation = 1;
  RETURN_IF_ERROR(r.Int("dilation", 1, &dilation));
  if (dilation != 1) return r.KeyError("dilation", "only dilation=1 is supported");
  for (const char* key : {"stride_x", "stride_y"}) {
    if (r.Has(key)) return r.KeyError(key, "is not supported; use stride");
  }
  if (l->filters <= 0) return r.KeyError("filters", "must be positive");
  if (l->size <= 0) return r.KeyError("size", "must be positive");
  if (l->stride <= 0) return r.KeyError("stride", "must be positive");
  if (l->groups <= 0) return r.KeyError("groups", "must be positive");
  if (in.c % l->groups != 0 || l->filters % l->groups != 0) {
    return r.KeyError("groups", "groups=" + std::to_string(l->groups) +
                                    " must divide the input channels (" + std::to_string(in.c) +
                                    ") and filters (" + std::to_string(l->filters) + ")");
  }
  l->batch_normalize = bn != 0;
  // darknet: `pad=1` means "same" padding of size/2 and overrides `padding`.
  if (pad != 0) l->padding = l->size / 2;
  int out_h = (in.h + 2 * l->padding - l->size) / l->stride + 1;
  int out_w = (in.w + 2 * l->padding - l->size) / l->stride + 1;
  if (out_h <= 0 || out_w <= 0) {
    return r.Error("kernel " + std::to_string(l->size) + " does not fit the " + ShapeText(in) +
                   " input");
  }
  l->output = {l->filters, out_h, out_w};
  int64_t n = l->filters;
  l->params =
      n + (l->batch_normalize ? 3 * n : 0) + n * (in.c / l->groups) * int64_t{l->size} * l->size;
  return Status::Ok();
}

Status ParseMaxpool(const OptionReader& r, const TensorShape& in, CfgLayer* l) {
  RETURN_IF_ERROR(r.Int("stride", 1, &l->stride));
  RETURN_IF_ERROR(r.Int("size", l->stride, &l->size));
  RETURN_IF_ERROR(r.Int("padding", l->size - 1, &l->padding));
  if (l->stride <= 0) return r.KeyError("stride", "must be positive");
  if (l->size <= 0) return r.KeyError("size", "must be positive");
  if (l->padding < 0) return r.KeyError("padding", "must not be negative");
  // darknet's maxpool `padding` is the total over both sides.
  int out_h = (in.h + l->padding - l->size) / l->stride + 1;
  int out_w = (in.w + l->padding - l->size) / l->stride + 1;
  if (out_h <= 0 || out_w <= 0) {
    return r.Error("window " + std::to_string(l->size) + " does not fit the " + ShapeText(in) +
                   " input");
  }
  l->output = {in.c, out_h, out_w};
  return Status::Ok();
}

Status ParseUpsample(const OptionReader& r, const TensorShape& in, CfgLayer* l) {
  RETURN_IF_ERROR(r.Int("stride", 2, &l->stride));
  if (l->stride <= 0) {
    return r.KeyError("stride", "only positive (upsampling) strides are supported");
  }
  l->output = {in.c, in.h * l->stride, in.w * l->stride};
  return Status::Ok();
}

Status ParseRoute(const OptionReader& r, const std::vector<CfgLayer>& prev, CfgLayer* l) {
  std::vector<int> refs;
  bool present = false;
  RETURN_IF_ERROR(r.IntList("layers", &refs, &present));
  if (!present || refs.empty()) return r.KeyError("layers", "is required");
  RETURN_IF_ERROR(r.Int("groups", 1, &l->groups));
  RETURN_IF_ERROR(r.Int("group_id", 0, &l->group_id));
  if (l->groups <= 0) return r.KeyError("groups", "must be positive");
  if (l->group_id < 0 || l->group_id >= l->groups) {
    return r.KeyError("group_id", "must be in [0, groups)");
  }
  int channels = 0;
  for (int ref : refs) {
    int idx = 0;
    RETURN_IF_ERROR(ResolveIndex(r, "layers", ref, l->index, &idx));
    const TensorShape& s = prev[idx].output;
    if (!l->inputs.empty()) {
      const TensorShape& first = prev[l->inputs.front()].output;
      if (s.h != first.h || s.w != first.w) {
        return r.KeyError("layers", "layer " + std::to_string(idx) + " is " + ShapeText(s) +
                                        " but layer " + std::to_string(l->inputs.front()) + " is " +
                                        ShapeText(first) +
                                        "; routed layers need the same height and width");
      }
    }
    if (s.c % l->groups != 0) {
      return r.KeyError("groups", "layer " + std::to_string(idx) + " has " + std::to_string(s.c) +
                                      " channels, not divisible by " + std::to_string(l->groups));
    }
    channels += s.c / l->groups;
    l->inputs.push_back(idx);
  }
  const TensorShape& first = prev[l->inputs.front()].output;
  l->output = {channels, first.h, first.w};
  return Status::Ok();
}

Status ParseShortcut(const OptionReader& r, const std::vector<CfgLayer>& prev, CfgLayer* l) {
  std::vector<int> refs;
  bool present = false;
  RETURN_IF_ERROR(r.IntList("from", &refs, &present));
  if (!present || refs.size() != 1) return r.KeyError("from", "must name exactly one layer");
  std::string weights_type;
  RETURN_IF_ERROR(r.String("weights_type", "none", &weights_type));
  if (weights_type != "none") return r.KeyError("weights_type", "only 'none' is supported");
  RETURN_IF_ERROR(r.String("activation", "linear", &l->activation));
  int from = 0;
  RETURN_IF_ERROR(ResolveIndex(r, "from", refs[0], l->index, &from));
  const TensorShape& a = prev[l->index - 1].output;
  const TensorShape& b = prev[from].output;
  if (!(a == b)) {
    return r.KeyError("from", "layer " + std::to_string(from) + " is " + ShapeText(b) +
                                  " but the previous layer is " + ShapeText(a) +
                                  "; shortcut needs equal shapes");
  }
  l->inputs = {l->index - 1, from};
  l->output = a;
  return Status::Ok();
}

Status ParseYolo(const OptionReader& r, const TensorShape& in, CfgLayer* l) {
  RETURN_IF_ERROR(r.Int("classes", 20, &l->classes));
  RETURN_IF_ERROR(r.FloatList("anchors", &l->anchors));
  int num = 0;
  RETURN_IF_ERROR(r.Int("num", static_cast<int>(l->anchors.size() / 2), &num));
  bool has_mask = false;
  RETURN_IF_ERROR(r.IntList("mask", &l->mask, &has_mask));
  if (l->classes <= 0) return r.KeyError("classes", "must be positive");
  if (l->anchors.size() % 2 != 0) return r.KeyError("anchors", "needs w,h pairs");
  if (static_cast<int>(l->anchors.size()) < 2 * num) {
    return r.KeyError("anchors", "num=" + std::to_string(num) + " needs " +
                                     std::to_string(2 * num) + " values, got " +
                                     std::to_string(l->anchors.size()));
  }
  if (!has_mask) {
    for (int i = 0; i < num; ++i) l->mask.push_back(i);
  }
  if (l->mask.empty()) return r.KeyError("mask", "is empty");
  for (int m : l->mask) {
    if (m < 0 || 2 * m + 1 >= static_cast<int>(l->anchors.size())) {
      return r.KeyError("mask", "index " + std::to_string(m) + " has no anchor");
    }
  }
  int expected = static_cast<int>(l->mask.size()) * (l->classes + 5);
  if (in.c != expected) {
    return r.Error("input has " + std::to_string(in.c) + " channels, but " +
                   std::to_string(l->mask.size()) + " anchors x (5 + " +
                   std::to_string(l->classes) + " classes) needs " + std::to_string(expected) +
                   "; set the preceding [convolutional] filters=" + std::to_string(expected));
  }
  l->output = in;
  return Status::Ok();
}

}  // namespace

const CfgSection::Option* CfgSection::Find(const std::string& key) const {
  for (auto it = options.rbegin(); it != options.rend(); ++it) {
    if (it->key == key) return &*it;
  }
  return nullptr;
}

StatusOr<std::vector<CfgSection>> ParseCfgSections(const std::string& text,
                                                   const std::string& origin) {
  std::vector<CfgSection> sections;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = StripAllSpace(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']') {
        return Err(Where(origin, line_no) + "section header '" + line + "' lacks ']'");
      }
      std::string type = line.substr(1, line.size() - 2);
      if (type.empty()) return Err(Where(origin, line_no) + "empty section name '[]'");
      sections.push_back(CfgSection{type, line_no, {}});
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Err(Where(origin, line_no) + "expected '[section]' or 'key=value', got '" + line +
                 "'");
    }
    if (sections.empty()) {
      return Err(Where(origin, line_no) + "'" + line + "' appears before any [section]");
    }
    sections.back().options.push_back({line.substr(0, eq), line.substr(eq + 1), line_no});
  }
  return sections;
}

const char* CfgLayerTypeName(CfgLayerType type) {
  switch (type) {
    case CfgLayerType::kConvolutional:
      return "convolutional";
    case CfgLayerType::kMaxpool:
      return "maxpool";
    case CfgLayerType::kUpsample:
      return "upsample";
    case CfgLayerType::kRoute:
      return "route";
    case CfgLayerType::kShortcut:
      return "shortcut";
    case CfgLayerType::kYolo:
      return "yolo";
  }
  return "?";
}

int64_t DarknetModel::TotalParams() const {
  int64_t total = 0;
  for (const CfgLayer& l : layers) total += l.params;
  return total;
}

std::vector<int> DarknetModel::YoloLayers() const {
  std::vector<int> out;
  for (const CfgLayer& l : layers) {
    if (l.type == CfgLayerType::kYolo) out.push_back(l.index);
  }
  return out;
}

int DarknetModel::NumClasses() const {
  for (const CfgLayer& l : layers) {
    if (l.type == CfgLayerType::kYolo) return l.classes;
  }
  return 0;
}

StatusOr<DarknetModel> ParseDarknetCfg(const std::string& text, const std::string& origin,
                                       int input_width, int input_height) {
  ASSIGN_OR_RETURN(std::vector<CfgSection> sections, ParseCfgSections(text, origin));
  if (sections.empty()) return Err(origin + ": no sections; expected [net] first");
  const CfgSection& net = sections.front();
  if (net.type != "net" && net.type != "network") {
    return Err(Where(origin, net.line) + "the first section must be [net], got [" + net.type + "]");
  }
  DarknetModel model;
  model.origin = origin;
  {
    OptionReader r(net, origin);
    RETURN_IF_ERROR(r.Int("width", 0, &model.input.w));
    RETURN_IF_ERROR(r.Int("height", 0, &model.input.h));
    RETURN_IF_ERROR(r.Int("channels", 0, &model.input.c));
    if (model.input.w <= 0) return r.KeyError("width", "must be set and positive");
    if (model.input.h <= 0) return r.KeyError("height", "must be set and positive");
    if (model.input.c <= 0) return r.KeyError("channels", "must be set and positive");
    if (input_width > 0) model.input.w = input_width;
    if (input_height > 0) model.input.h = input_height;
  }
  int yolo_classes = 0;
  for (size_t s = 1; s < sections.size(); ++s) {
    const CfgSection& sec = sections[s];
    OptionReader r(sec, origin);
    CfgLayer l;
    l.index = static_cast<int>(model.layers.size());
    l.line = sec.line;
    const TensorShape in = model.layers.empty() ? model.input : model.layers.back().output;
    if (l.index > 0) l.inputs = {l.index - 1};
    if (sec.type == "convolutional" || sec.type == "conv") {
      l.type = CfgLayerType::kConvolutional;
      RETURN_IF_ERROR(ParseConvolutional(r, in, &l));
    } else if (sec.type == "maxpool" || sec.type == "max") {
      l.type = CfgLayerType::kMaxpool;
      RETURN_IF_ERROR(ParseMaxpool(r, in, &l));
    } else if (sec.type == "upsample") {
      l.type = CfgLayerType::kUpsample;
      RETURN_IF_ERROR(ParseUpsample(r, in, &l));
    } else if (sec.type == "route") {
      l.type = CfgLayerType::kRoute;
      l.inputs.clear();
      RETURN_IF_ERROR(ParseRoute(r, model.layers, &l));
    } else if (sec.type == "shortcut") {
      l.type = CfgLayerType::kShortcut;
      if (l.index == 0) return r.Error("cannot be the first layer");
      RETURN_IF_ERROR(ParseShortcut(r, model.layers, &l));
    } else if (sec.type == "yolo") {
      l.type = CfgLayerType::kYolo;
      if (l.index == 0) return r.Error("cannot be the first layer");
      RETURN_IF_ERROR(ParseYolo(r, in, &l));
      if (yolo_classes != 0 && l.classes != yolo_classes) {
        return r.KeyError("classes", "is " + std::to_string(l.classes) +
                                         " but an earlier [yolo] has " +
                                         std::to_string(yolo_classes));
      }
      yolo_classes = l.classes;
    } else if (sec.type == "net" || sec.type == "network") {
      return Err(Where(origin, sec.line) + "a second [" + sec.type + "] section");
    } else {
      return Err(Where(origin, sec.line) + "unsupported layer type [" + sec.type +
                 "]; supported: [convolutional], [maxpool], [upsample], [route], [shortcut], "
                 "[yolo] (the layers of yolov3-tiny, yolov3 and yolov4-tiny)");
    }
    model.layers.push_back(std::move(l));
  }
  if (model.layers.empty()) return Err(origin + ": the cfg has [net] but no layers");
  return model;
}

StatusOr<DarknetModel> LoadDarknetCfg(const std::string& path, int input_width, int input_height) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return text.status().Annotate(
        "loading darknet cfg (pass an existing .cfg, e.g. "
        "/usr/share/darknet/cfg/yolov3-tiny.cfg)");
  }
  return ParseDarknetCfg(*text, path, input_width, input_height);
}

}  // namespace fs
