#include "src/base/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "src/base/utf8.h"

namespace fs {
namespace {
const Json::Array kEmptyArray;
const Json::Object kEmptyObject;
const Json kNull;

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  StatusOr<Json> ParseDocument() {
    auto v = ParseValue(0);
    if (!v.ok()) return v;
    SkipWs();
    if (pos_ != s_.size()) return Fail("trailing characters");
    return v;
  }

 private:
  Status Fail(const std::string& what) {
    return Err("invalid JSON at offset " + std::to_string(pos_) + ": " + what);
  }
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Consume(const char* lit) {
    size_t n = strlen(lit);
    if (s_.compare(pos_, n, lit) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  StatusOr<Json> ParseValue(int depth) {
    if (depth > 200) return Fail("nesting too deep");
    SkipWs();
    if (pos_ >= s_.size()) return Fail("unexpected end");
    char c = s_[pos_];
    if (c == '{') return ParseObject(depth);
    if (c == '[') return ParseArray(depth);
    if (c == '"') {
      auto str = ParseString();
      if (!str.ok()) return str.status();
      return Json(std::move(str).value());
    }
    if (Consume("true")) return Json(true);
    if (Consume("false")) return Json(false);
    if (Consume("null")) return Json();
    if (c == '-' || (c >= '0' && c <= '9')) {
      const char* start = s_.c_str() + pos_;
      char* end = nullptr;
      double v = strtod(start, &end);
      if (end == start) return Fail("bad number");
      pos_ += static_cast<size_t>(end - start);
      return Json(v);
    }
    return Fail(std::string("unexpected character '") + c + "'");
  }

  StatusOr<std::string> ParseString() {
    ++pos_;  // opening quote
    std::string out;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return Fail("bad \\u escape");
          unsigned cp = static_cast<unsigned>(strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16));
          pos_ += 4;
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          return Fail("bad escape");
      }
    }
    return Fail("unterminated string");
  }

  StatusOr<Json> ParseArray(int depth) {
    ++pos_;
    Json arr = Json::MakeArray();
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return arr;
    }
    for (;;) {
      auto v = ParseValue(depth + 1);
      if (!v.ok()) return v;
      arr.Push(std::move(v).value());
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      return Fail("expected , or ]");
    }
  }

  StatusOr<Json> ParseObject(int depth) {
    ++pos_;
    Json obj = Json::MakeObject();
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return obj;
    }
    for (;;) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected key");
      auto key = ParseString();
      if (!key.ok()) return key.status();
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected :");
      ++pos_;
      auto v = ParseValue(depth + 1);
      if (!v.ok()) return v;
      obj[key.value()] = std::move(v).value();
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      return Fail("expected , or }");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
};
}  // namespace

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  // JSON text is UTF-8 (RFC 8259): bytes from outside (a scraped /metrics body, a server's
  // error) that are not well-formed become U+FFFD, so every file written parses.
  return ValidUtf8(out);
}

const Json::Array& Json::AsArray() const { return arr_ ? *arr_ : kEmptyArray; }
const Json::Object& Json::AsObject() const { return obj_ ? *obj_ : kEmptyObject; }

void Json::Detach() {
  if (arr_ && arr_.use_count() > 1) arr_ = std::make_shared<Array>(*arr_);
  if (obj_ && obj_.use_count() > 1) obj_ = std::make_shared<Object>(*obj_);
}

Json& Json::operator[](const std::string& key) {
  if (type_ != Type::kObject) *this = MakeObject();
  Detach();
  return (*obj_)[key];
}

const Json& Json::Get(const std::string& key) const {
  if (type_ != Type::kObject) return kNull;
  auto it = obj_->find(key);
  return it == obj_->end() ? kNull : it->second;
}

bool Json::Has(const std::string& key) const {
  return type_ == Type::kObject && obj_->count(key) > 0;
}

void Json::Push(Json v) {
  if (type_ != Type::kArray) *this = MakeArray();
  Detach();
  arr_->push_back(std::move(v));
}

size_t Json::size() const {
  if (type_ == Type::kArray) return arr_->size();
  if (type_ == Type::kObject) return obj_->size();
  return 0;
}

std::string Json::Dump(int indent) const {
  std::string out;
  DumpTo(&out, indent, 0);
  return out;
}

void Json::DumpTo(std::string* out, int indent, int depth) const {
  auto newline = [&](int d) {
    if (indent < 0) return;
    *out += '\n';
    out->append(static_cast<size_t>(indent * d), ' ');
  };
  switch (type_) {
    case Type::kNull:
      *out += "null";
      break;
    case Type::kBool:
      *out += bool_ ? "true" : "false";
      break;
    case Type::kNumber: {
      if (!std::isfinite(num_)) {
        *out += "null";
      } else if (num_ == std::floor(num_) && std::fabs(num_) < 1e15) {
        *out += std::to_string(static_cast<int64_t>(num_));
      } else {
        char buf[32];
        snprintf(buf, sizeof(buf), "%.17g", num_);  // round-trips every double
        *out += buf;
      }
      break;
    }
    case Type::kString:
      *out += "\"" + JsonEscape(str_) + "\"";
      break;
    case Type::kArray: {
      *out += '[';
      bool first = true;
      for (const auto& v : *arr_) {
        if (!first) *out += ',';
        first = false;
        newline(depth + 1);
        v.DumpTo(out, indent, depth + 1);
      }
      if (!arr_->empty()) newline(depth);
      *out += ']';
      break;
    }
    case Type::kObject: {
      *out += '{';
      bool first = true;
      for (const auto& [k, v] : *obj_) {
        if (!first) *out += ',';
        first = false;
        newline(depth + 1);
        *out += "\"" + JsonEscape(k) + "\":";
        if (indent >= 0) *out += ' ';
        v.DumpTo(out, indent, depth + 1);
      }
      if (!obj_->empty()) newline(depth);
      *out += '}';
      break;
    }
  }
}

StatusOr<Json> Json::Parse(const std::string& text) { return Parser(text).ParseDocument(); }

}  // namespace fs
