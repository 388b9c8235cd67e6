// The in-memory profile model (milestone 4): a mirror of pprof's profile.proto with strings held
// inline rather than as string-table indexes. Entities refer to each other by id (never by
// pointer) so a Profile can be copied, compared and serialised without fix-ups. Ids are nonzero;
// 0 means "none" (e.g. a location with mapping_id 0 has no known mapping), as in pprof.
#ifndef FRAMESCOPE_PROFILE_PROFILE_H_
#define FRAMESCOPE_PROFILE_PROFILE_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace fs::profile {

// A (type, unit) pair such as {"cpu", "nanoseconds"}.
struct ValueType {
  std::string type{};
  std::string unit{};
  bool operator==(const ValueType&) const = default;
};

// One mapped object file (executable or shared library) of the profiled process.
struct Mapping {
  uint64_t id = 0;
  uint64_t start = 0;   // memory_start
  uint64_t limit = 0;   // memory_limit (exclusive)
  uint64_t offset = 0;  // file offset of `start`
  std::string file{};
  std::string build_id{};
  // What symbolization achieved for this mapping; pprof uses them to decide whether to
  // re-symbolize, so set has_functions once names are filled in.
  bool has_functions = false;
  bool has_filenames = false;
  bool has_line_numbers = false;
  bool has_inline_frames = false;
  bool operator==(const Mapping&) const = default;
};

struct Function {
  uint64_t id = 0;
  std::string name{};         // demangled, e.g. "fs::Foo::Bar(int)"
  std::string system_name{};  // as in the symbol table, e.g. "_ZN2fs3Foo3BarEi"
  std::string filename{};     // source file
  int64_t start_line = 0;
  bool operator==(const Function&) const = default;
};

struct Line {
  uint64_t function_id = 0;
  int64_t line = 0;
  bool operator==(const Line&) const = default;
};

struct Location {
  uint64_t id = 0;
  uint64_t mapping_id = 0;  // 0: unknown mapping
  uint64_t address = 0;     // instruction address in the process
  // Innermost (inlined) frame first, the function the code was inlined into last, as in pprof.
  // Empty when the address could not be symbolized.
  std::vector<Line> lines{};
  bool is_folded = false;
  bool operator==(const Location&) const = default;
};

struct Sample {
  std::vector<uint64_t> location_ids{};  // leaf first
  std::vector<int64_t> values{};         // one per Profile::sample_types
  // String labels, e.g. {"thread", "worker-3"}, {"service", "capture"}.
  std::map<std::string, std::string> labels{};
  // Numeric labels, e.g. {"tid", 1234}. (pprof's num_unit is not modelled.)
  std::map<std::string, int64_t> num_labels{};
  bool operator==(const Sample&) const = default;
};

struct Profile {
  std::vector<ValueType> sample_types{};  // e.g. {"samples","count"}, {"cpu","nanoseconds"}
  std::vector<Sample> samples{};
  std::vector<Mapping> mappings{};
  std::vector<Location> locations{};
  std::vector<Function> functions{};
  std::string drop_frames{};  // regexp, pprof semantics
  std::string keep_frames{};  // regexp, pprof semantics
  int64_t time_nanos = 0;     // wall-clock start of collection, ns since the epoch
  int64_t duration_nanos = 0;
  ValueType period_type{};  // e.g. {"cpu", "nanoseconds"}
  int64_t period = 0;       // e.g. 10101010 ns at 99 Hz
  std::vector<std::string> comments{};
  std::string default_sample_type{};  // a sample_types[i].type; empty: the last one
  bool operator==(const Profile&) const = default;

  // Linear lookups, for tests and small profiles; bulk users should index once themselves.
  const Mapping* FindMapping(uint64_t id) const;
  const Location* FindLocation(uint64_t id) const;
  const Function* FindFunction(uint64_t id) const;
};

// Builds a Profile, interning functions and locations so callers can add raw stacks without
// tracking ids. Ids are assigned densely from 1 in insertion order (deterministic output).
class ProfileBuilder {
 public:
  ProfileBuilder() = default;

  // The profile under construction: set sample_types, period, etc. directly on it.
  Profile& profile() { return profile_; }

  // Adds `mapping` and returns its id (any id already in `mapping` is replaced).
  uint64_t AddMapping(Mapping mapping);
  // Returns the id of the function keyed by (name, filename), creating it on first use; later
  // calls with the same key return the same id and ignore system_name/start_line.
  uint64_t InternFunction(const std::string& name, const std::string& filename = "",
                          const std::string& system_name = "", int64_t start_line = 0);
  // Returns the id of the location keyed by (mapping_id, address), creating it with `lines` on
  // first use. Address 0 (a purely symbolic frame) is keyed by its lines instead.
  uint64_t InternLocation(uint64_t mapping_id, uint64_t address, std::vector<Line> lines = {});
  void AddSample(Sample sample) { profile_.samples.push_back(std::move(sample)); }

  Profile Build() && { return std::move(profile_); }

 private:
  using LineKey = std::vector<std::pair<uint64_t, int64_t>>;
  Profile profile_;
  std::map<std::pair<std::string, std::string>, uint64_t> functions_;
  std::map<std::tuple<uint64_t, uint64_t, LineKey>, uint64_t> locations_;
};

// How every rendering (folded stacks, the call tree) names frames, so they agree.
// A mapping's file without its directories ("" for no mapping or no file).
std::string ModuleBasename(const Mapping* mapping);
// A function's name, else its system name, else "[unknown]" (also for no function).
std::string FunctionDisplayName(const Function* function);
// A location without functions: "<module>+0x<file offset>" inside a mapping ("[unknown]" for a
// mapping without a file), else the bare address "0x<address>".
std::string AddressDisplayName(const Location& location, const Mapping* mapping);

}  // namespace fs::profile

#endif  // FRAMESCOPE_PROFILE_PROFILE_H_
