#include "src/profile/pprof.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "src/base/file_util.h"
#include "src/profile/folded.h"
#include "src/profile/profile.h"

namespace fs::profile {
namespace {

// A small fixed profile exercising every field: two mappings (one unsymbolized), an inlined
// frame, string and numeric labels, comments and the optional top-level fields.
Profile MakeTestProfile() {
  ProfileBuilder b;
  Profile& p = b.profile();
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 10'000'000;
  p.time_nanos = 1'700'000'000'000'000'000;
  p.duration_nanos = 2'000'000'000;
  p.comments = {"framescope test profile", "second comment"};
  p.drop_frames = "^__libc_start";
  p.keep_frames = "^main$";
  p.default_sample_type = "cpu";
  uint64_t exe = b.AddMapping({.start = 0x400000,
                               .limit = 0x500000,
                               .offset = 0,
                               .file = "/usr/bin/capture",
                               .build_id = "abcdef0123456789",
                               .has_functions = true,
                               .has_filenames = true,
                               .has_line_numbers = true,
                               .has_inline_frames = true});
  uint64_t lib = b.AddMapping({.start = 0x7f0000000000,
                               .limit = 0x7f0000100000,
                               .offset = 0x1000,
                               .file = "/usr/lib/libfoo.so",
                               .build_id = "",
                               .has_functions = true});
  uint64_t main_fn = b.InternFunction("main", "capture.cc", "main", 10);
  uint64_t process =
      b.InternFunction("fs::Capture::Process()", "capture.cc", "_ZN2fs7Capture7ProcessEv", 20);
  uint64_t decode = b.InternFunction("fs::Decode(int)", "decode.cc", "_ZN2fs6DecodeEi", 30);
  uint64_t clamp = b.InternFunction("fs::Clamp(int)", "util.h", "_ZN2fs5ClampEi", 3);
  uint64_t loc_main = b.InternLocation(exe, 0x401000, {{main_fn, 12}});
  uint64_t loc_process = b.InternLocation(exe, 0x402000, {{process, 25}});
  // fs::Clamp inlined into fs::Decode: innermost first.
  uint64_t loc_decode = b.InternLocation(exe, 0x403000, {{clamp, 5}, {decode, 33}});
  uint64_t loc_lib = b.InternLocation(lib, 0x7f0000000500);
  b.AddSample({.location_ids = {loc_decode, loc_process, loc_main},
               .values = {6, 60'000'000},
               .labels = {{"thread", "worker-1"}, {"service", "capture"}},
               .num_labels = {{"tid", 42}}});
  b.AddSample({.location_ids = {loc_process, loc_main},
               .values = {3, 30'000'000},
               .labels = {{"thread", "main"}}});
  b.AddSample({.location_ids = {loc_lib, loc_process, loc_main}, .values = {1, 10'000'000}});
  return std::move(b).Build();
}

std::string HexDump(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    uint8_t b = static_cast<uint8_t>(bytes[i]);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
    out += (i % 32 == 31 || i + 1 == bytes.size()) ? '\n' : ' ';
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/pprof_test.XXXXXX";
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ProfileBuilderTest, InternsFunctionsAndLocations) {
  ProfileBuilder b;
  uint64_t m = b.AddMapping({.file = "/bin/x"});
  EXPECT_EQ(m, 1u);
  uint64_t f1 = b.InternFunction("f", "a.cc");
  EXPECT_EQ(b.InternFunction("f", "a.cc", "ignored", 7), f1);
  EXPECT_NE(b.InternFunction("f", "b.cc"), f1);
  uint64_t l1 = b.InternLocation(m, 0x10, {{f1, 1}});
  EXPECT_EQ(b.InternLocation(m, 0x10), l1);
  EXPECT_NE(b.InternLocation(m, 0x20), l1);
  // Address 0 locations are keyed by their lines.
  uint64_t s1 = b.InternLocation(0, 0, {{f1, 1}});
  EXPECT_EQ(b.InternLocation(0, 0, {{f1, 1}}), s1);
  EXPECT_NE(b.InternLocation(0, 0, {{f1, 2}}), s1);
  Profile p = std::move(b).Build();
  EXPECT_EQ(p.functions.size(), 2u);
  EXPECT_EQ(p.locations.size(), 4u);
  ASSERT_NE(p.FindFunction(f1), nullptr);
  EXPECT_EQ(p.FindFunction(f1)->name, "f");
  EXPECT_EQ(p.FindLocation(99), nullptr);
}

TEST(PprofTest, RoundTripPreservesEverything) {
  Profile p = MakeTestProfile();
  StatusOr<std::string> bytes = EncodePprof(p);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  ASSERT_GE(bytes->size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[0]), 0x1f);  // gzip magic
  StatusOr<Profile> decoded = DecodePprof(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, p);
  // Raw (uncompressed) protobuf is accepted too.
  StatusOr<Profile> raw = DecodePprof(EncodePprofProto(p));
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  EXPECT_EQ(*raw, p);
}

TEST(PprofTest, EmptyProfileRoundTrips) {
  Profile p;
  StatusOr<std::string> bytes = EncodePprof(p);
  ASSERT_TRUE(bytes.ok());
  StatusOr<Profile> decoded = DecodePprof(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, p);
}

TEST(PprofTest, ExtremeValuesRoundTrip) {
  Profile p;
  p.sample_types = {{"v", "count"}};
  p.mappings.push_back({.id = UINT64_MAX, .start = UINT64_MAX - 1, .limit = UINT64_MAX});
  p.functions.push_back({.id = 7, .name = std::string("a\0b;c", 5), .start_line = -1});
  p.locations.push_back(
      {.id = 3, .mapping_id = UINT64_MAX, .address = UINT64_MAX, .lines = {{7, INT64_MIN}}});
  p.samples.push_back({.location_ids = {3, 3}, .values = {INT64_MIN}, .num_labels = {{"n", -5}}});
  p.time_nanos = -1;
  StatusOr<Profile> decoded = DecodePprof(EncodePprofProto(p));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, p);
}

TEST(PprofTest, MatchesGoldenFile) {
  // Compares the uncompressed protobuf (gzip output differs between zlib versions). To
  // regenerate after an intended format change: FS_UPDATE_GOLDEN=1 ./pprof_test
  std::string golden_path = std::string(FS_PROFILE_TESTDATA_DIR) + "/small_profile.pb.hex";
  std::string actual = HexDump(EncodePprofProto(MakeTestProfile()));
  if (getenv("FS_UPDATE_GOLDEN") != nullptr) {
    ASSERT_TRUE(WriteFileAtomic(golden_path, actual).ok());
  }
  StatusOr<std::string> golden = ReadFile(golden_path);
  ASSERT_TRUE(golden.ok()) << golden.status().message();
  EXPECT_EQ(actual, *golden) << "pprof encoding changed; if intended, regenerate the golden";

  // Files written by earlier versions must still read back to the same profile.
  std::string bytes;
  for (size_t i = 0; i + 1 < golden->size(); ++i) {
    if (std::isxdigit(static_cast<unsigned char>((*golden)[i])) &&
        std::isxdigit(static_cast<unsigned char>((*golden)[i + 1]))) {
      bytes.push_back(static_cast<char>(std::stoi(golden->substr(i, 2), nullptr, 16)));
      ++i;
    }
  }
  StatusOr<Profile> decoded = DecodePprof(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, MakeTestProfile());
}

TEST(PprofTest, FileRoundTrip) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/cpu.prof";
  Profile p = MakeTestProfile();
  ASSERT_TRUE(WritePprofFile(path, p).ok());
  StatusOr<Profile> read = ReadPprofFile(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, p);

  StatusOr<Profile> missing = ReadPprofFile(dir.path() + "/nope.prof");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.prof"), std::string::npos);

  ASSERT_TRUE(WriteFileAtomic(path, "garbage!").ok());
  StatusOr<Profile> bad = ReadPprofFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ": not a pprof profile"), std::string::npos)
      << bad.status().message();
}

void ExpectError(const std::string& bytes, const std::string& expected) {
  StatusOr<Profile> p = DecodePprof(bytes);
  ASSERT_FALSE(p.ok()) << "expected error containing: " << expected;
  EXPECT_NE(p.status().message().find(expected), std::string::npos) << p.status().message();
}

TEST(PprofDecodeTest, WireErrors) {
  using namespace std::string_literals;
  ExpectError("", "not a pprof profile: empty input");
  // Field 2 (sample) claims 5 bytes but 1 is left.
  ExpectError("\x12\x05\x08"s, "truncated protobuf at offset 2");
  // Varint cut short.
  ExpectError("\x48\x80"s, "truncated protobuf at offset 2");
  // time_nanos with an 11-byte varint.
  ExpectError("\x48"s + std::string(10, '\xff') + "\x01"s, "bad varint at offset 1");
  // Groups (wire type 3) are not part of profile.proto.
  ExpectError("\x7b"s, "unsupported wire type 3 at offset 0");
  // Field number 0.
  ExpectError("\x00\x01"s, "bad field number 0");
  // sample_type (a message) sent as a varint.
  ExpectError("\x48\x01\x08\x01"s, "unexpected wire type 0 at offset 2");
  // Valid wire format, but no string table.
  ExpectError("\x48\x01"s, "not a pprof profile: no string table");
  ExpectError("\x32\x01x"s, "string_table[0] is not empty");
}

TEST(PprofDecodeTest, SemanticErrors) {
  using namespace std::string_literals;
  const std::string kEmptyStrings = "\x32\x00"s;
  // Function 1 whose name is string 99.
  ExpectError(
      kEmptyStrings + "\x2a\x04\x08\x01\x10\x63"s,
      "invalid pprof profile: function 1 name has string index 99 outside the string table of 1");
  // sample_type {type: 5}.
  ExpectError(kEmptyStrings + "\x0a\x02\x08\x05"s, "sample_type 0 type has string index 5");
  // A sample with a label whose key is string -1.
  ExpectError(kEmptyStrings + "\x12\x0d\x1a\x0b\x08"s + std::string(9, '\xff') + "\x01"s,
              "sample 0 label key has string index -1");
  // Function with id 0.
  ExpectError(kEmptyStrings + "\x2a\x00"s, "function with id 0");

  Profile p = MakeTestProfile();
  Profile bad_fn = p;
  bad_fn.locations[0].lines[0].function_id = 99;
  ExpectError(EncodePprofProto(bad_fn),
              "invalid pprof profile: location 1 references missing "
              "function 99");
  Profile bad_loc = p;
  bad_loc.samples[1].location_ids.push_back(77);
  ExpectError(EncodePprofProto(bad_loc), "sample 1 references missing location 77");
  Profile bad_map = p;
  bad_map.locations[2].mapping_id = 5;
  ExpectError(EncodePprofProto(bad_map), "location 3 references missing mapping 5");
  Profile dup = p;
  dup.functions.push_back(dup.functions[0]);
  ExpectError(EncodePprofProto(dup), "duplicate function 1");
  Profile values = p;
  values.samples[0].values.pop_back();
  ExpectError(EncodePprofProto(values), "sample 0 has 1 values for 2 sample types");
}

TEST(PprofDecodeTest, BadGzip) {
  using namespace std::string_literals;
  ExpectError("\x1f\x8b"s, "not a pprof profile: truncated gzip stream");
  ExpectError("\x1f\x8bgarbage-garbage-garbage"s, "bad gzip data");
  StatusOr<std::string> gz = EncodePprof(MakeTestProfile());
  ASSERT_TRUE(gz.ok());
  std::string corrupt = *gz;
  corrupt[corrupt.size() / 2] ^= 0x55;
  EXPECT_FALSE(DecodePprof(corrupt).ok());
  ExpectError(*gz + "xyz", "trailing data after the gzip stream");
}

TEST(PprofDecodeTest, GzipBombIsRejected) {
  // kMaxPprofBytes + 1 MiB of zeros compress to ~260 KiB; streamed so the test never holds the
  // expanded data itself.
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string zeros(1 << 20, '\0');
  std::string gz;
  char out[65536];
  size_t chunks = kMaxPprofBytes / zeros.size() + 1;
  for (size_t i = 0; i < chunks; ++i) {
    zs.next_in = reinterpret_cast<Bytef*>(zeros.data());
    zs.avail_in = static_cast<uInt>(zeros.size());
    int flush = i + 1 == chunks ? Z_FINISH : Z_NO_FLUSH;
    do {
      zs.next_out = reinterpret_cast<Bytef*>(out);
      zs.avail_out = sizeof(out);
      deflate(&zs, flush);
      gz.append(out, sizeof(out) - zs.avail_out);
    } while (zs.avail_out == 0);
  }
  deflateEnd(&zs);
  ExpectError(gz, "decompressed size exceeds");
}

TEST(PprofDecodeTest, GzipTruncatedAtEveryByteFails) {
  StatusOr<std::string> gz = EncodePprof(MakeTestProfile());
  ASSERT_TRUE(gz.ok());
  for (size_t n = 0; n < gz->size(); ++n) {
    StatusOr<Profile> p = DecodePprof(gz->substr(0, n));
    EXPECT_FALSE(p.ok()) << "prefix of " << n << " bytes decoded";
    if (!p.ok()) {
      EXPECT_EQ(p.status().message().rfind("not a pprof profile", 0), 0u) << p.status().message();
    }
  }
}

TEST(PprofDecodeTest, ProtoTruncatedAtEveryByteNeverDecodesTheOriginal) {
  // Protobuf has no end marker, so a prefix ending on a field boundary can be a valid (smaller)
  // profile; what matters is that no prefix crashes or is mistaken for the whole.
  Profile original = MakeTestProfile();
  std::string proto = EncodePprofProto(original);
  int errors = 0;
  for (size_t n = 0; n < proto.size(); ++n) {
    StatusOr<Profile> p = DecodePprof(proto.substr(0, n));
    if (p.ok()) {
      EXPECT_NE(*p, original) << "prefix of " << n << " bytes";
    } else {
      ++errors;
    }
  }
  EXPECT_GT(errors, static_cast<int>(proto.size()) * 9 / 10);
}

TEST(PprofDecodeTest, RandomAndMutatedInputsNeverCrash) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 256, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    EXPECT_FALSE(DecodePprof(bytes).ok()) << "random input " << i << " decoded";
    // Same bytes behind a gzip magic.
    (void)DecodePprof("\x1f\x8b" + bytes);
  }
  std::string proto = EncodePprofProto(MakeTestProfile());
  for (int i = 0; i < 5000; ++i) {
    std::string mutated = proto;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < flips; ++j) mutated[rng() % mutated.size()] = static_cast<char>(rng());
    (void)DecodePprof(mutated);  // ok or error; ASAN/UBSan catch misbehaviour
  }
}

TEST(FoldedTest, ToFoldedExpandsInlinedFramesAndMergesStacks) {
  Profile p = MakeTestProfile();
  // A duplicate of the first stack, to be merged.
  p.samples.push_back({.location_ids = p.samples[0].location_ids, .values = {4, 40'000'000}});
  EXPECT_EQ(ToFolded(p),
            "main;fs::Capture::Process() 3\n"
            "main;fs::Capture::Process();fs::Decode(int);fs::Clamp(int) 10\n"
            "main;fs::Capture::Process();libfoo.so+0x1500 1\n");
  EXPECT_EQ(ToFolded(p, 1),
            "main;fs::Capture::Process() 30000000\n"
            "main;fs::Capture::Process();fs::Decode(int);fs::Clamp(int) 100000000\n"
            "main;fs::Capture::Process();libfoo.so+0x1500 10000000\n");
  EXPECT_EQ(ToFolded(p, 2), "");
  EXPECT_EQ(ToFolded(p, -1), "");
}

TEST(FoldedTest, UnknownLocationsAndSanitizedNames) {
  Profile p;
  p.sample_types = {{"samples", "count"}};
  p.functions.push_back({.id = 1, .name = "", .system_name = "_Z1fv"});
  p.functions.push_back({.id = 2, .name = "a;b"});
  p.locations.push_back({.id = 1, .address = 0xabc});
  p.locations.push_back({.id = 2, .lines = {{1, 0}}});
  p.locations.push_back({.id = 3, .lines = {{2, 0}}});
  p.samples.push_back({.location_ids = {1, 2, 3}, .values = {2}});
  p.samples.push_back({.location_ids = {}, .values = {1}});
  p.samples.push_back({.location_ids = {3}, .values = {0}});
  EXPECT_EQ(ToFolded(p), "[unknown] 1\na_b;_Z1fv;0xabc 2\n");
}

TEST(FoldedTest, ParseFolded) {
  StatusOr<std::vector<FoldedStack>> stacks =
      ParseFolded("main;f;g 42\r\n\n  \nsolo 0\nwith space;f(int, char) 7");
  ASSERT_TRUE(stacks.ok()) << stacks.status().message();
  std::vector<FoldedStack> expected = {
      {{"main", "f", "g"}, 42}, {{"solo"}, 0}, {{"with space", "f(int, char)"}, 7}};
  EXPECT_EQ(*stacks, expected);

  StatusOr<std::vector<FoldedStack>> round = ParseFolded(ToFolded(MakeTestProfile()));
  ASSERT_TRUE(round.ok()) << round.status().message();
  ASSERT_EQ(round->size(), 3u);
  EXPECT_EQ((*round)[1].frames.back(), "fs::Clamp(int)");
  EXPECT_EQ((*round)[1].count, 6);
}

void ExpectFoldedError(const std::string& text, const std::string& expected) {
  StatusOr<std::vector<FoldedStack>> stacks = ParseFolded(text);
  ASSERT_FALSE(stacks.ok()) << "expected error: " << expected;
  EXPECT_EQ(stacks.status().message(), expected);
}

TEST(FoldedTest, ParseFoldedErrorsNameTheLine) {
  ExpectFoldedError("a;b;c", "folded line 1: missing count");
  ExpectFoldedError("a;b 1\n\nc;d -3\n", "folded line 3: negative count '-3'");
  ExpectFoldedError("a 1\nb 2\nc abc\n",
                    "folded line 3: count 'abc' is not a non-negative integer");
  ExpectFoldedError("a 1\nb 12x\n", "folded line 2: count '12x' is not a non-negative integer");
  ExpectFoldedError("a 1\nb 99999999999999999999\n",
                    "folded line 2: count '99999999999999999999' "
                    "out of range");
  ExpectFoldedError(" 5\n", "folded line 1: empty stack");
  ExpectFoldedError("a;;b 5\n", "folded line 1: empty frame in stack");
  ExpectFoldedError("a 5 \n", "folded line 1: missing count");
}

// Runs `/usr/bin/go <args>` (a shell fragment) in `dir`, hermetically: HOME, the Go cache and
// pprof's temp/binary search paths all point into `dir`, and the network is off. Returns the exit
// status; stdout (and stderr, if `args` redirects it) goes to *output.
int RunGo(const std::string& dir, const std::string& args, std::string* output) {
  std::string cmd = "cd '" + dir + "' && HOME='" + dir + "' GOCACHE='" + dir +
                    "/gocache' GOPATH='" + dir +
                    "/gopath' GOFLAGS= GOPROXY=off GOTOOLCHAIN=local PPROF_TMPDIR='" + dir +
                    "' PPROF_BINARY_PATH='" + dir + "' /usr/bin/go " + args;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  output->clear();
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  return pclose(pipe);
}

// `go tool pprof` is the reference reader: if it accepts our file and shows the right totals,
// the encoding is right in the ways that matter to users.
TEST(PprofGoToolTest, GoToolPprofReadsOurProfile) {
  if (access("/usr/bin/go", X_OK) != 0) GTEST_SKIP() << "/usr/bin/go not installed (golang-go)";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/cpu.prof";
  ASSERT_TRUE(WritePprofFile(path, MakeTestProfile()).ok());
  const std::string& d = dir.path();
  std::string output;
  ASSERT_EQ(RunGo(d, "tool pprof -top -nodecount=10 '" + path + "' 2>&1", &output), 0) << output;
  // default_sample_type is "cpu": 6+3+1 samples of 10ms.
  EXPECT_NE(output.find("100ms total"), std::string::npos) << output;
  for (const char* name : {"main", "fs::Capture::Process", "fs::Decode", "fs::Clamp"}) {
    EXPECT_NE(output.find(name), std::string::npos) << name << " missing from:\n" << output;
  }
  // fs::Clamp is the leaf of 6 samples: 60ms flat.
  EXPECT_NE(output.find("60ms 60.00% 60.00%"), std::string::npos) << output;
  std::printf("go tool pprof -top output:\n%s", output.c_str());

  // Interop the other way: Go's encoder rewrites the profile (its own string-table order and
  // field layout) and our decoder must read back the same stacks.
  std::string go_path = d + "/go.prof";
  ASSERT_EQ(RunGo(d, "tool pprof -proto '" + path + "' > '" + go_path + "'", &output), 0) << output;
  StatusOr<Profile> from_go = ReadPprofFile(go_path);
  ASSERT_TRUE(from_go.ok()) << from_go.status().message();
  Profile original = MakeTestProfile();
  EXPECT_EQ(from_go->sample_types, original.sample_types);
  EXPECT_EQ(from_go->period, original.period);
  EXPECT_EQ(ToFolded(*from_go, 0), ToFolded(original, 0));
  EXPECT_EQ(ToFolded(*from_go, 1), ToFolded(original, 1));
}

}  // namespace
}  // namespace fs::profile
