// A small JSON value: enough for state files, status output and service APIs.
// Numbers are doubles (integers up to 2^53 round-trip exactly).
#ifndef FRAMESCOPE_BASE_JSON_H_
#define FRAMESCOPE_BASE_JSON_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;

  Json() = default;
  Json(std::nullptr_t) {}                                                                 // NOLINT
  Json(bool b) : type_(Type::kBool), bool_(b) {}                                          // NOLINT
  Json(int v) : type_(Type::kNumber), num_(v) {}                                          // NOLINT
  Json(int64_t v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}                 // NOLINT
  Json(uint64_t v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}                // NOLINT
  Json(double v) : type_(Type::kNumber), num_(v) {}                                       // NOLINT
  Json(const char* s) : type_(Type::kString), str_(s) {}                                  // NOLINT
  Json(std::string s) : type_(Type::kString), str_(std::move(s)) {}                       // NOLINT
  Json(Array a) : type_(Type::kArray), arr_(std::make_shared<Array>(std::move(a))) {}     // NOLINT
  Json(Object o) : type_(Type::kObject), obj_(std::make_shared<Object>(std::move(o))) {}  // NOLINT

  static Json MakeObject() { return Json(Object{}); }
  static Json MakeArray() { return Json(Array{}); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_number() const { return type_ == Type::kNumber; }

  double AsDouble(double def = 0) const { return type_ == Type::kNumber ? num_ : def; }
  // `def` for non-numbers, NaN and values outside int64 (a cast would be undefined).
  int64_t AsInt(int64_t def = 0) const {
    return type_ == Type::kNumber && num_ >= -9.2e18 && num_ <= 9.2e18 ? static_cast<int64_t>(num_)
                                                                       : def;
  }
  bool AsBool(bool def = false) const { return type_ == Type::kBool ? bool_ : def; }
  const std::string& AsString() const { return str_; }
  const Array& AsArray() const;
  const Object& AsObject() const;

  // Object access. operator[] on a non-object turns it into an object (writer convenience).
  Json& operator[](const std::string& key);
  // Read access: returns a null Json when absent.
  const Json& Get(const std::string& key) const;
  bool Has(const std::string& key) const;
  void Push(Json v);
  size_t size() const;

  std::string Dump(int indent = -1) const;
  static StatusOr<Json> Parse(const std::string& text);

 private:
  void DumpTo(std::string* out, int indent, int depth) const;
  void Detach();  // copy-on-write for shared containers

  Type type_ = Type::kNull;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;
  std::shared_ptr<Array> arr_;
  std::shared_ptr<Object> obj_;
};

std::string JsonEscape(const std::string& s);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_JSON_H_
