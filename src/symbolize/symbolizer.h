// Symbolizer: turns instruction addresses sampled from a live process into frames (function,
// file:line, inlined callers) with elfutils' libdwfl.
//
// Modules are taken from /proc/<pid>/maps when the Symbolizer is created. An address outside
// every mapping known then (a library the process dlopen()ed since) makes it read the maps again,
// at most once per 200 ms (kMapsRereadIntervalNs), and report the new modules to libdwfl.
//
// Each Symbolizer's own Dwfl only maps addresses to modules. The debug info of a module with a
// build-id is read from one process-wide Dwfl that opens each (build-id, path) file once, so
// libc's separate debug file (compressed DWARF) is read and inflated once per framescope run,
// not once per process that maps libc.
//
// An address inside an ELF module that no symbol (nor DWARF) names is named after the function
// that contains it, as the CFI (.eh_frame) describes it: "<module basename>+0x<FDE start>"
// (Frame::from_cfi), so all samples of one stripped function merge into one frame.
//
// Frames are cached twice:
//  - per address inside one Symbolizer (one process);
//  - process-wide, keyed by (build-id, module path, module offset), so libc, OpenCV, ... mapped
//    by every service are symbolized once per framescope run. The path is part of the key because
//    a stripped copy of a binary keeps its build-id: we report what *this* file's ELF and debug
//    info say, not what another copy of the same build said.
//
// A Symbolizer is not thread-safe (libdwfl handles are not); the shared cache is.
#ifndef FRAMESCOPE_SYMBOLIZE_SYMBOLIZER_H_
#define FRAMESCOPE_SYMBOLIZE_SYMBOLIZER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/base/status.h"
#include "src/symbolize/process_dwfl.h"

// elfutils <elfutils/libdwfl.h>; kept out of this header.
struct Dwfl;
struct Dwfl_Module;

namespace fs::profile {

struct SymbolIndex;  // symbolizer.cc: a module's symbols and CFI FDE ranges, sorted.

struct Frame {
  std::string function;  // Demangled; "" when only the file:line is known.
  std::string file;      // Source path as recorded in DWARF; "" without debug info.
  int line = 0;          // 0 without debug info.
  bool inlined = false;  // True: this frame's code was inlined into the next frame.
  // True: no symbol names this code; `function` is "<module basename>+0x<start>" where start is
  // the ELF virtual address of the CFI FDE (the function's start) that covers the address.
  bool from_cfi = false;
};

struct Symbolized {
  // Path of the mapped ELF; "[vdso]", "[kernel.kallsyms]" (or "[<kernel module>]"), "[kernel]"
  // (kernel address, names hidden), "[anon]" or "[unknown]" otherwise.
  std::string module;
  std::string build_id;  // GNU build-id as lowercase hex; "" if none.
  uint64_t module_start = 0;
  uint64_t module_end = 0;
  // address - load bias: the ELF virtual address (what addr2line -e MODULE takes). For addresses
  // outside any ELF module: the offset from the start of the mapping.
  uint64_t module_offset = 0;
  std::vector<Frame> frames;  // Innermost (inlined) first; empty if unknown.

  // True: a symbol table or DWARF named the function. False: only the module is known (show as
  // module+0xoffset), or only the CFI (frames.front().from_cfi: grouped by function start).
  bool resolved() const {
    return !frames.empty() && !frames.front().function.empty() && !frames.front().from_cfi;
  }
  // True: frames.front().function is the CFI-based "<module>+0x<function start>" name.
  bool from_cfi() const { return !frames.empty() && frames.front().from_cfi; }
};

struct SymbolizerStats {
  uint64_t lookups = 0;            // Calls to Lookup().
  uint64_t cache_hits = 0;         // Answered from this Symbolizer's per-address cache.
  uint64_t shared_cache_hits = 0;  // Answered from the process-wide (build-id) cache.
  uint64_t maps_rereads = 0;       // Reads of /proc/<pid>/maps after the first.
};

class Symbolizer {
 public:
  // A library mapped since the maps were read is found by the next lookup that misses them, or
  // after this interval: bounds the cost of junk addresses that are in no mapping at all.
  static constexpr int64_t kMapsRereadIntervalNs = 200'000'000;

  // Reports the modules mapped in `pid` (/proc/<pid>/maps). Errors for a process that does not
  // exist (or has exited), for permission denied, and for a process with no mappings (zombie).
  static StatusOr<std::unique_ptr<Symbolizer>> ForProcess(pid_t pid);

  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Cached per (address, is_return_address), except addresses outside every mapping (a later
  // re-read of the maps may find them). Return addresses (every frame of a callchain but the
  // leaf) point after the call instruction, possibly into the next line or function, so they are
  // looked up at address - 1; module_offset still describes `address` itself.
  Symbolized Lookup(uint64_t address, bool is_return_address = false);

  // True if `address` is in an executable mapping of the process: code, never data (the heap,
  // anonymous memory, the stack). Outside every known mapping, the maps are read again first
  // (rate-limited, as in Lookup). Cheap enough per frame: the last mapping found, else a binary
  // search.
  bool IsExecutable(uint64_t address);

  // Innermost function name (the CFI-based "<module basename>+0x<function start>" for stripped
  // code), or "<module basename>+0x<offset>"; never empty.
  std::string Describe(uint64_t address, bool is_return_address = false);

  const SymbolizerStats& stats() const { return stats_; }
  pid_t pid() const { return pid_; }

  // Empties the process-wide caches, including the shared debug-info Dwfl (benchmarks measure
  // cold symbolization with it).
  static void ClearSharedCache();

 private:
  struct Mapping {
    uint64_t start = 0, end = 0, offset = 0;
    bool executable = false;  // 'x' in the permissions.
    std::string path;
  };

  Symbolizer(pid_t pid, DwflPtr dwfl, std::vector<Mapping> mappings);
  // /proc/<pid>/maps, sorted by start; errors start with `where`.
  static StatusOr<std::vector<Mapping>> ReadMappings(pid_t pid, const std::string& where);
  // The module containing `pc`, nullptr if none. dwfl_addrmodule alone can answer a module for
  // an address past its end (seen: a library dlopen()ed in the gap above libasan was named
  // libasan's "_fini").
  ::Dwfl_Module* ModuleAt(uint64_t pc) const;
  // The mapping containing `address`, nullptr if none.
  const Mapping* FindMapping(uint64_t address) const;
  // Reads the maps again and reports modules mapped since to libdwfl, unless that was done less
  // than kMapsRereadIntervalNs ago. True if the mappings were read.
  bool RereadMappings();
  Symbolized LookupUncached(uint64_t address, bool is_return_address);
  void FillFromMaps(uint64_t address, bool is_return_address, Symbolized* out);
  // The symbol index of `module` (this process's module; the cache key): built once per module
  // from `source` (the same file, possibly in the shared Dwfl, load bias `bias`), shared by
  // build-id across processes.
  std::shared_ptr<const SymbolIndex> SymbolsFor(::Dwfl_Module* module, ::Dwfl_Module* source,
                                                uint64_t bias, const Symbolized& where);

  pid_t pid_;
  DwflPtr dwfl_;
  std::vector<Mapping> mappings_;  // Sorted by start; fallback for non-ELF addresses.
  size_t last_found_ = 0;          // Index in mappings_ of IsExecutable's last answer.
  int64_t last_reread_ns_ = 0;     // MonotonicNs of the last re-read; 0: none yet.
  std::unordered_map<uint64_t, Symbolized> cache_[2];  // [is_return_address]
  std::unordered_map<const ::Dwfl_Module*, std::shared_ptr<const SymbolIndex>> symbols_;
  SymbolizerStats stats_;
};

// Demangles an Itanium C++ ABI name ("_ZN2fs3FooEv" -> "fs::Foo()"); other names unchanged.
std::string Demangle(const std::string& name);

}  // namespace fs::profile

#endif  // FRAMESCOPE_SYMBOLIZE_SYMBOLIZER_H_
