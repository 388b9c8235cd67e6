#include "src/profile/pprof.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "src/base/file_util.h"
#include "src/base/output.h"

namespace fs::profile {
namespace {

// Field numbers from perftools' profile.proto.
namespace field {
// Profile
constexpr uint32_t kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5,
                   kStringTable = 6, kDropFrames = 7, kKeepFrames = 8, kTimeNanos = 9,
                   kDurationNanos = 10, kPeriodType = 11, kPeriod = 12, kComment = 13,
                   kDefaultSampleType = 14;
// ValueType
constexpr uint32_t kVtType = 1, kVtUnit = 2;
// Sample
constexpr uint32_t kSampleLocationId = 1, kSampleValue = 2, kSampleLabel = 3;
// Label
constexpr uint32_t kLabelKey = 1, kLabelStr = 2, kLabelNum = 3, kLabelNumUnit = 4;
// Mapping
constexpr uint32_t kMapId = 1, kMapStart = 2, kMapLimit = 3, kMapOffset = 4, kMapFilename = 5,
                   kMapBuildId = 6, kMapHasFunctions = 7, kMapHasFilenames = 8,
                   kMapHasLineNumbers = 9, kMapHasInlineFrames = 10;
// Location
constexpr uint32_t kLocId = 1, kLocMappingId = 2, kLocAddress = 3, kLocLine = 4, kLocIsFolded = 5;
// Line
constexpr uint32_t kLineFunctionId = 1, kLineLine = 2;
// Function
constexpr uint32_t kFnId = 1, kFnName = 2, kFnSystemName = 3, kFnFilename = 4, kFnStartLine = 5;
}  // namespace field

constexpr int kWireVarint = 0, kWireFixed64 = 1, kWireLen = 2, kWireFixed32 = 5;

// ---------------------------------------------------------------------------------------------
// Encoding

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutTag(std::string* out, uint32_t field, int wire) {
  PutVarint(out, (uint64_t{field} << 3) | static_cast<uint64_t>(wire));
}

// proto3 semantics: zero values are omitted.
void PutUint(std::string* out, uint32_t field, uint64_t v) {
  if (v == 0) return;
  PutTag(out, field, kWireVarint);
  PutVarint(out, v);
}

// int64 is encoded as its two's-complement uint64 (not zigzag), as profile.proto's int64.
void PutInt(std::string* out, uint32_t field, int64_t v) {
  PutUint(out, field, static_cast<uint64_t>(v));
}

void PutBytes(std::string* out, uint32_t field, std::string_view bytes) {
  PutTag(out, field, kWireLen);
  PutVarint(out, bytes.size());
  out->append(bytes);
}

template <typename T>
void PutPacked(std::string* out, uint32_t field, const std::vector<T>& values) {
  if (values.empty()) return;
  std::string packed;
  for (T v : values) PutVarint(&packed, static_cast<uint64_t>(v));
  PutBytes(out, field, packed);
}

// Interns strings in first-use order; index 0 is always "".
class StringTable {
 public:
  StringTable() { Index(""); }
  int64_t Index(const std::string& s) {
    auto [it, inserted] = index_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (inserted) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, int64_t> index_;
  std::vector<std::string> strings_;
};

std::string EncodeValueType(const ValueType& vt, StringTable* st) {
  std::string m;
  PutInt(&m, field::kVtType, st->Index(vt.type));
  PutInt(&m, field::kVtUnit, st->Index(vt.unit));
  return m;
}

std::string CompressGzip(const std::string& data, Status* status) {
  z_stream zs{};
  // windowBits 15+16: a gzip (not zlib) wrapper, which is what pprof readers sniff for.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    *status = Err("gzip: deflateInit2 failed");
    return "";
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    *status = Err("gzip: deflate failed (" + std::to_string(rc) + ")");
    return "";
  }
  out.resize(produced);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

Status NotPprof(const std::string& why) { return Err("not a pprof profile: " + why); }
Status Invalid(const std::string& why) { return Err("invalid pprof profile: " + why); }

// Reads protobuf wire format from a slice of the whole message; offsets in errors are absolute
// (from the start of the decompressed message) so they can be matched against a hex dump.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base) : data_(data), base_(base) {}

  bool done() const { return pos_ >= data_.size(); }
  size_t offset() const { return base_ + pos_; }

  Status ReadVarint(uint64_t* out) {
    uint64_t v = 0;
    size_t start = pos_;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) {
        return NotPprof("truncated protobuf at offset " + std::to_string(base_ + pos_));
      }
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      // The 10th byte may only carry the top bit of a 64-bit value.
      if (shift == 63 && b > 1) break;
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        *out = v;
        return Status::Ok();
      }
    }
    return NotPprof("bad varint at offset " + std::to_string(base_ + start));
  }

  Status ReadTag(uint32_t* field, int* wire) {
    size_t at = offset();
    uint64_t tag;
    RETURN_IF_ERROR(ReadVarint(&tag));
    tag_offset_ = at;
    *wire = static_cast<int>(tag & 7);
    uint64_t f = tag >> 3;
    if (f == 0 || f > 0x1fffffff) {
      return NotPprof("bad field number " + std::to_string(f) + " at offset " + std::to_string(at));
    }
    *field = static_cast<uint32_t>(f);
    return Status::Ok();
  }

  // A length-delimited payload; *sub_base receives its absolute offset.
  Status ReadLen(std::string_view* out, size_t* sub_base) {
    uint64_t len;
    RETURN_IF_ERROR(ReadVarint(&len));
    if (len > data_.size() - pos_) {
      return NotPprof("truncated protobuf at offset " + std::to_string(offset()) + " (field of " +
                      std::to_string(len) + " bytes, " + std::to_string(data_.size() - pos_) +
                      " left)");
    }
    *sub_base = offset();
    *out = data_.substr(pos_, len);
    pos_ += len;
    return Status::Ok();
  }

  Status Skip(int wire) {
    size_t at = tag_offset_;
    switch (wire) {
      case kWireVarint: {
        uint64_t ignored;
        return ReadVarint(&ignored);
      }
      case kWireFixed64:
      case kWireFixed32: {
        size_t n = wire == kWireFixed64 ? 8 : 4;
        if (n > data_.size() - pos_) {
          return NotPprof("truncated protobuf at offset " + std::to_string(offset()));
        }
        pos_ += n;
        return Status::Ok();
      }
      case kWireLen: {
        std::string_view ignored;
        size_t ignored_base;
        return ReadLen(&ignored, &ignored_base);
      }
      default:
        return NotPprof("unsupported wire type " + std::to_string(wire) + " at offset " +
                        std::to_string(at));
    }
  }

  // A scalar field that must be a varint.
  Status Uint(int wire, uint64_t* out) {
    if (wire != kWireVarint) return WrongWire(wire);
    return ReadVarint(out);
  }
  Status Int(int wire, int64_t* out) {
    uint64_t v;
    RETURN_IF_ERROR(Uint(wire, &v));
    *out = static_cast<int64_t>(v);
    return Status::Ok();
  }
  Status Bool(int wire, bool* out) {
    uint64_t v;
    RETURN_IF_ERROR(Uint(wire, &v));
    *out = v != 0;
    return Status::Ok();
  }
  Status Message(int wire, WireReader* sub) {
    if (wire != kWireLen) return WrongWire(wire);
    std::string_view bytes;
    size_t sub_base;
    RETURN_IF_ERROR(ReadLen(&bytes, &sub_base));
    *sub = WireReader(bytes, sub_base);
    return Status::Ok();
  }
  // A repeated integer field, packed (wire type 2) or not (wire type 0).
  template <typename T>
  Status Repeated(int wire, std::vector<T>* out) {
    if (wire == kWireVarint) {
      uint64_t v;
      RETURN_IF_ERROR(ReadVarint(&v));
      out->push_back(static_cast<T>(v));
      return Status::Ok();
    }
    WireReader packed({}, 0);
    RETURN_IF_ERROR(Message(wire, &packed));
    while (!packed.done()) {
      uint64_t v;
      RETURN_IF_ERROR(packed.ReadVarint(&v));
      out->push_back(static_cast<T>(v));
    }
    return Status::Ok();
  }

 private:
  Status WrongWire(int wire) const {
    return NotPprof("unexpected wire type " + std::to_string(wire) + " at offset " +
                    std::to_string(tag_offset_));
  }

  std::string_view data_;
  size_t base_;
  size_t pos_ = 0;
  size_t tag_offset_ = 0;  // of the last tag read, for errors about its field
};

// Messages as on the wire: strings are still string-table indexes, resolved once the whole
// profile (whose string table may come last) has been read.
struct RawValueType {
  int64_t type = 0, unit = 0;
};
struct RawLabel {
  int64_t key = 0, str = 0, num = 0, num_unit = 0;
};
struct RawSample {
  std::vector<uint64_t> location_ids;
  std::vector<int64_t> values;
  std::vector<RawLabel> labels;
};
struct RawMapping {
  Mapping mapping;
  int64_t filename = 0, build_id = 0;
};
struct RawFunction {
  Function function;
  int64_t name = 0, system_name = 0, filename = 0;
};
struct RawProfile {
  std::vector<RawValueType> sample_types;
  std::vector<RawSample> samples;
  std::vector<RawMapping> mappings;
  std::vector<Location> locations;
  std::vector<RawFunction> functions;
  std::vector<std::string> strings;
  int64_t drop_frames = 0, keep_frames = 0, time_nanos = 0, duration_nanos = 0, period = 0,
          default_sample_type = 0;
  RawValueType period_type;
  std::vector<int64_t> comments;
};

// Each Parse* reads one message to its end, skipping unknown fields (forward compatibility).
Status ParseValueType(WireReader r, RawValueType* vt) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    if (f == field::kVtType) {
      RETURN_IF_ERROR(r.Int(w, &vt->type));
    } else if (f == field::kVtUnit) {
      RETURN_IF_ERROR(r.Int(w, &vt->unit));
    } else {
      RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseLabel(WireReader r, RawLabel* l) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    switch (f) {
      case field::kLabelKey:
        RETURN_IF_ERROR(r.Int(w, &l->key));
        break;
      case field::kLabelStr:
        RETURN_IF_ERROR(r.Int(w, &l->str));
        break;
      case field::kLabelNum:
        RETURN_IF_ERROR(r.Int(w, &l->num));
        break;
      case field::kLabelNumUnit:
        RETURN_IF_ERROR(r.Int(w, &l->num_unit));
        break;
      default:
        RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseSample(WireReader r, RawSample* s) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    switch (f) {
      case field::kSampleLocationId:
        RETURN_IF_ERROR(r.Repeated(w, &s->location_ids));
        break;
      case field::kSampleValue:
        RETURN_IF_ERROR(r.Repeated(w, &s->values));
        break;
      case field::kSampleLabel: {
        WireReader sub({}, 0);
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseLabel(sub, &s->labels.emplace_back()));
        break;
      }
      default:
        RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseMapping(WireReader r, RawMapping* m) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    switch (f) {
      case field::kMapId:
        RETURN_IF_ERROR(r.Uint(w, &m->mapping.id));
        break;
      case field::kMapStart:
        RETURN_IF_ERROR(r.Uint(w, &m->mapping.start));
        break;
      case field::kMapLimit:
        RETURN_IF_ERROR(r.Uint(w, &m->mapping.limit));
        break;
      case field::kMapOffset:
        RETURN_IF_ERROR(r.Uint(w, &m->mapping.offset));
        break;
      case field::kMapFilename:
        RETURN_IF_ERROR(r.Int(w, &m->filename));
        break;
      case field::kMapBuildId:
        RETURN_IF_ERROR(r.Int(w, &m->build_id));
        break;
      case field::kMapHasFunctions:
        RETURN_IF_ERROR(r.Bool(w, &m->mapping.has_functions));
        break;
      case field::kMapHasFilenames:
        RETURN_IF_ERROR(r.Bool(w, &m->mapping.has_filenames));
        break;
      case field::kMapHasLineNumbers:
        RETURN_IF_ERROR(r.Bool(w, &m->mapping.has_line_numbers));
        break;
      case field::kMapHasInlineFrames:
        RETURN_IF_ERROR(r.Bool(w, &m->mapping.has_inline_frames));
        break;
      default:
        RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseLine(WireReader r, Line* l) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    if (f == field::kLineFunctionId) {
      RETURN_IF_ERROR(r.Uint(w, &l->function_id));
    } else if (f == field::kLineLine) {
      RETURN_IF_ERROR(r.Int(w, &l->line));
    } else {
      RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseLocation(WireReader r, Location* loc) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    switch (f) {
      case field::kLocId:
        RETURN_IF_ERROR(r.Uint(w, &loc->id));
        break;
      case field::kLocMappingId:
        RETURN_IF_ERROR(r.Uint(w, &loc->mapping_id));
        break;
      case field::kLocAddress:
        RETURN_IF_ERROR(r.Uint(w, &loc->address));
        break;
      case field::kLocLine: {
        WireReader sub({}, 0);
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseLine(sub, &loc->lines.emplace_back()));
        break;
      }
      case field::kLocIsFolded:
        RETURN_IF_ERROR(r.Bool(w, &loc->is_folded));
        break;
      default:
        RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseFunction(WireReader r, RawFunction* fn) {
  while (!r.done()) {
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    switch (f) {
      case field::kFnId:
        RETURN_IF_ERROR(r.Uint(w, &fn->function.id));
        break;
      case field::kFnName:
        RETURN_IF_ERROR(r.Int(w, &fn->name));
        break;
      case field::kFnSystemName:
        RETURN_IF_ERROR(r.Int(w, &fn->system_name));
        break;
      case field::kFnFilename:
        RETURN_IF_ERROR(r.Int(w, &fn->filename));
        break;
      case field::kFnStartLine:
        RETURN_IF_ERROR(r.Int(w, &fn->function.start_line));
        break;
      default:
        RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

Status ParseProfile(std::string_view bytes, RawProfile* p) {
  WireReader r(bytes, 0);
  for (size_t messages = 0; !r.done(); ++messages) {
    if (messages >= kMaxPprofMessages) {
      return NotPprof("more than " + std::to_string(kMaxPprofMessages) + " top-level fields");
    }
    uint32_t f;
    int w;
    RETURN_IF_ERROR(r.ReadTag(&f, &w));
    WireReader sub({}, 0);
    switch (f) {
      case field::kSampleType:
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseValueType(sub, &p->sample_types.emplace_back()));
        break;
      case field::kSample:
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseSample(sub, &p->samples.emplace_back()));
        break;
      case field::kMapping:
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseMapping(sub, &p->mappings.emplace_back()));
        break;
      case field::kLocation:
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseLocation(sub, &p->locations.emplace_back()));
        break;
      case field::kFunction:
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseFunction(sub, &p->functions.emplace_back()));
        break;
      case field::kStringTable: {
        if (w != kWireLen)
          return NotPprof("string_table entry with wire type " + std::to_string(w));
        std::string_view s;
        size_t ignored;
        RETURN_IF_ERROR(r.ReadLen(&s, &ignored));
        p->strings.emplace_back(s);
        break;
      }
      case field::kDropFrames:
        RETURN_IF_ERROR(r.Int(w, &p->drop_frames));
        break;
      case field::kKeepFrames:
        RETURN_IF_ERROR(r.Int(w, &p->keep_frames));
        break;
      case field::kTimeNanos:
        RETURN_IF_ERROR(r.Int(w, &p->time_nanos));
        break;
      case field::kDurationNanos:
        RETURN_IF_ERROR(r.Int(w, &p->duration_nanos));
        break;
      case field::kPeriodType:
        RETURN_IF_ERROR(r.Message(w, &sub));
        RETURN_IF_ERROR(ParseValueType(sub, &p->period_type));
        break;
      case field::kPeriod:
        RETURN_IF_ERROR(r.Int(w, &p->period));
        break;
      case field::kComment:
        RETURN_IF_ERROR(r.Repeated(w, &p->comments));
        break;
      case field::kDefaultSampleType:
        RETURN_IF_ERROR(r.Int(w, &p->default_sample_type));
        break;
      default:
        RETURN_IF_ERROR(r.Skip(w));
    }
  }
  return Status::Ok();
}

// Resolves string indexes and checks cross references.
StatusOr<Profile> Resolve(RawProfile raw) {
  if (raw.strings.empty()) return NotPprof("no string table");
  if (!raw.strings[0].empty()) return NotPprof("string_table[0] is not empty");
  const std::vector<std::string>& strings = raw.strings;
  // The first bad string index, reported once the current entity is done. `what` (which field
  // held it) is a callable so descriptions are only built on the error path.
  Status error;
  auto str = [&](int64_t index, auto&& what) -> std::string {
    if (index >= 0 && static_cast<uint64_t>(index) < strings.size()) {
      return strings[static_cast<size_t>(index)];
    }
    if (error.ok()) {
      error = Invalid(std::string(what()) + " has string index " + std::to_string(index) +
                      " outside the string table of " + std::to_string(strings.size()));
    }
    return "";
  };
  auto named = [](std::string what, uint64_t id, const char* field) {
    return [what = std::move(what), id, field] {
      return what + " " + std::to_string(id) + " " + field;
    };
  };
  auto literal = [](const char* what) { return [what] { return std::string(what); }; };

  Profile out;
  for (size_t i = 0; i < raw.sample_types.size(); ++i) {
    const RawValueType& vt = raw.sample_types[i];
    out.sample_types.push_back({str(vt.type, named("sample_type", i, "type")),
                                str(vt.unit, named("sample_type", i, "unit"))});
  }
  out.period_type = {str(raw.period_type.type, literal("period_type type")),
                     str(raw.period_type.unit, literal("period_type unit"))};
  out.drop_frames = str(raw.drop_frames, literal("drop_frames"));
  out.keep_frames = str(raw.keep_frames, literal("keep_frames"));
  out.default_sample_type = str(raw.default_sample_type, literal("default_sample_type"));
  for (int64_t c : raw.comments) out.comments.push_back(str(c, literal("comment")));
  out.time_nanos = raw.time_nanos;
  out.duration_nanos = raw.duration_nanos;
  out.period = raw.period;
  RETURN_IF_ERROR(error);

  std::unordered_set<uint64_t> mapping_ids, function_ids, location_ids;
  out.mappings.reserve(raw.mappings.size());
  for (RawMapping& rm : raw.mappings) {
    uint64_t id = rm.mapping.id;
    if (id == 0) return Invalid("mapping with id 0");
    if (!mapping_ids.insert(id).second) return Invalid("duplicate mapping " + std::to_string(id));
    rm.mapping.file = str(rm.filename, named("mapping", id, "filename"));
    rm.mapping.build_id = str(rm.build_id, named("mapping", id, "build_id"));
    RETURN_IF_ERROR(error);
    out.mappings.push_back(std::move(rm.mapping));
  }
  out.functions.reserve(raw.functions.size());
  for (RawFunction& rf : raw.functions) {
    uint64_t id = rf.function.id;
    if (id == 0) return Invalid("function with id 0");
    if (!function_ids.insert(id).second) return Invalid("duplicate function " + std::to_string(id));
    rf.function.name = str(rf.name, named("function", id, "name"));
    rf.function.system_name = str(rf.system_name, named("function", id, "system_name"));
    rf.function.filename = str(rf.filename, named("function", id, "filename"));
    RETURN_IF_ERROR(error);
    out.functions.push_back(std::move(rf.function));
  }
  out.locations.reserve(raw.locations.size());
  for (Location& loc : raw.locations) {
    if (loc.id == 0) return Invalid("location with id 0");
    std::string what = "location " + std::to_string(loc.id);
    if (!location_ids.insert(loc.id).second) return Invalid("duplicate " + what);
    if (loc.mapping_id != 0 && !mapping_ids.contains(loc.mapping_id)) {
      return Invalid(what + " references missing mapping " + std::to_string(loc.mapping_id));
    }
    for (const Line& line : loc.lines) {
      if (!function_ids.contains(line.function_id)) {
        return Invalid(what + " references missing function " + std::to_string(line.function_id));
      }
    }
    out.locations.push_back(std::move(loc));
  }
  out.samples.reserve(raw.samples.size());
  for (size_t i = 0; i < raw.samples.size(); ++i) {
    RawSample& rs = raw.samples[i];
    if (rs.values.size() != out.sample_types.size()) {
      return Invalid("sample " + std::to_string(i) + " has " + std::to_string(rs.values.size()) +
                     " values for " + std::to_string(out.sample_types.size()) + " sample types");
    }
    for (uint64_t id : rs.location_ids) {
      if (!location_ids.contains(id)) {
        return Invalid("sample " + std::to_string(i) + " references missing location " +
                       std::to_string(id));
      }
    }
    Sample s{.location_ids = std::move(rs.location_ids), .values = std::move(rs.values)};
    for (const RawLabel& l : rs.labels) {
      std::string key = str(l.key, named("sample", i, "label key"));
      if (l.str != 0) {
        s.labels[key] = str(l.str, named("sample", i, "label value"));
      } else {
        s.num_labels[key] = l.num;
      }
    }
    RETURN_IF_ERROR(error);
    out.samples.push_back(std::move(s));
  }
  return out;
}

StatusOr<std::string> Gunzip(const std::string& bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return Err("gzip: inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  if (bytes.size() > UINT_MAX) {
    inflateEnd(&zs);
    return NotPprof("compressed input too large");
  }
  zs.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      std::string why = rc == Z_BUF_ERROR ? "truncated gzip stream"
                                          : std::string("bad gzip data: ") +
                                                (zs.msg ? zs.msg : std::to_string(rc));
      inflateEnd(&zs);
      return NotPprof(why);
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > kMaxPprofBytes) {
      inflateEnd(&zs);
      return NotPprof("decompressed size exceeds " + std::to_string(kMaxPprofBytes) + " bytes");
    }
  }
  size_t trailing = zs.avail_in;
  inflateEnd(&zs);
  if (trailing != 0) {
    return NotPprof(std::to_string(trailing) + " bytes of trailing data after the gzip stream");
  }
  return out;
}

}  // namespace

std::string EncodePprofProto(const Profile& p) {
  StringTable st;
  std::string head;  // fields 1-5, before the string table
  for (const ValueType& vt : p.sample_types) {
    PutBytes(&head, field::kSampleType, EncodeValueType(vt, &st));
  }
  for (const Sample& s : p.samples) {
    std::string m;
    PutPacked(&m, field::kSampleLocationId, s.location_ids);
    PutPacked(&m, field::kSampleValue, s.values);
    for (const auto& [key, value] : s.labels) {
      if (value.empty()) continue;  // would be indistinguishable from a numeric label
      std::string l;
      PutInt(&l, field::kLabelKey, st.Index(key));
      PutInt(&l, field::kLabelStr, st.Index(value));
      PutBytes(&m, field::kSampleLabel, l);
    }
    for (const auto& [key, num] : s.num_labels) {
      std::string l;
      PutInt(&l, field::kLabelKey, st.Index(key));
      PutInt(&l, field::kLabelNum, num);
      PutBytes(&m, field::kSampleLabel, l);
    }
    PutBytes(&head, field::kSample, m);
  }
  for (const Mapping& mp : p.mappings) {
    std::string m;
    PutUint(&m, field::kMapId, mp.id);
    PutUint(&m, field::kMapStart, mp.start);
    PutUint(&m, field::kMapLimit, mp.limit);
    PutUint(&m, field::kMapOffset, mp.offset);
    PutInt(&m, field::kMapFilename, st.Index(mp.file));
    PutInt(&m, field::kMapBuildId, st.Index(mp.build_id));
    PutUint(&m, field::kMapHasFunctions, mp.has_functions);
    PutUint(&m, field::kMapHasFilenames, mp.has_filenames);
    PutUint(&m, field::kMapHasLineNumbers, mp.has_line_numbers);
    PutUint(&m, field::kMapHasInlineFrames, mp.has_inline_frames);
    PutBytes(&head, field::kMapping, m);
  }
  for (const Location& loc : p.locations) {
    std::string m;
    PutUint(&m, field::kLocId, loc.id);
    PutUint(&m, field::kLocMappingId, loc.mapping_id);
    PutUint(&m, field::kLocAddress, loc.address);
    for (const Line& line : loc.lines) {
      std::string l;
      PutUint(&l, field::kLineFunctionId, line.function_id);
      PutInt(&l, field::kLineLine, line.line);
      PutBytes(&m, field::kLocLine, l);
    }
    PutUint(&m, field::kLocIsFolded, loc.is_folded);
    PutBytes(&head, field::kLocation, m);
  }
  for (const Function& fn : p.functions) {
    std::string m;
    PutUint(&m, field::kFnId, fn.id);
    PutInt(&m, field::kFnName, st.Index(fn.name));
    PutInt(&m, field::kFnSystemName, st.Index(fn.system_name));
    PutInt(&m, field::kFnFilename, st.Index(fn.filename));
    PutInt(&m, field::kFnStartLine, fn.start_line);
    PutBytes(&head, field::kFunction, m);
  }

  std::string tail;  // fields 7-14, after the string table
  PutInt(&tail, field::kDropFrames, st.Index(p.drop_frames));
  PutInt(&tail, field::kKeepFrames, st.Index(p.keep_frames));
  PutInt(&tail, field::kTimeNanos, p.time_nanos);
  PutInt(&tail, field::kDurationNanos, p.duration_nanos);
  if (!p.period_type.type.empty() || !p.period_type.unit.empty()) {
    PutBytes(&tail, field::kPeriodType, EncodeValueType(p.period_type, &st));
  }
  PutInt(&tail, field::kPeriod, p.period);
  for (const std::string& c : p.comments) {
    // Comments are repeated int64; a zero index (empty comment) must still be written.
    PutTag(&tail, field::kComment, kWireVarint);
    PutVarint(&tail, static_cast<uint64_t>(st.Index(c)));
  }
  PutInt(&tail, field::kDefaultSampleType, st.Index(p.default_sample_type));

  std::string out = std::move(head);
  for (const std::string& s : st.strings()) PutBytes(&out, field::kStringTable, s);
  out += tail;
  return out;
}

StatusOr<std::string> EncodePprof(const Profile& profile) {
  std::string proto = EncodePprofProto(profile);
  if (proto.size() > kMaxPprofBytes) {
    return Err("pprof encode: profile of " + std::to_string(proto.size()) + " bytes exceeds the " +
               std::to_string(kMaxPprofBytes) + "-byte limit");
  }
  Status status;
  std::string gz = CompressGzip(proto, &status);
  if (!status.ok()) return status.Annotate("pprof encode");
  return gz;
}

StatusOr<Profile> DecodePprof(const std::string& bytes) {
  if (bytes.empty()) return NotPprof("empty input");
  std::string inflated;
  const std::string* proto = &bytes;
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
      static_cast<uint8_t>(bytes[1]) == 0x8b) {
    ASSIGN_OR_RETURN(inflated, Gunzip(bytes));
    proto = &inflated;
  } else if (bytes.size() > kMaxPprofBytes) {
    return NotPprof("size exceeds " + std::to_string(kMaxPprofBytes) + " bytes");
  }
  RawProfile raw;
  RETURN_IF_ERROR(ParseProfile(*proto, &raw));
  return Resolve(std::move(raw));
}

Status WritePprofFile(const std::string& path, const Profile& profile) {
  ASSIGN_OR_RETURN(std::string bytes, EncodePprof(profile));
  return WriteOutput(path, bytes);
}

namespace {

// Folded stacks ("main;f;g 42" per line) and other text are the usual wrong input: say so
// instead of reporting a protobuf offset.
bool LooksLikeText(const std::string& bytes) {
  const size_t n = std::min<size_t>(bytes.size(), 4096);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
  }
  return n > 0;
}

}  // namespace

StatusOr<Profile> ReadPprofFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  StatusOr<Profile> profile = DecodePprof(bytes);
  if (profile.ok()) return profile;
  if (LooksLikeText(bytes)) {
    const bool folded =
        bytes.find(';') != std::string::npos || bytes.find(' ') != std::string::npos;
    return Err(path + ": not a pprof profile: it is text" + (folded ? " (folded stacks?)" : "") +
               "; give the .prof file (gzip-compressed protobuf) that `framescope record` or "
               "`framescope profile` wrote beside it");
  }
  return profile.status().Annotate(path);
}

}  // namespace fs::profile
