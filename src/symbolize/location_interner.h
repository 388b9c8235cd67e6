// Symbolized locations and mappings for a ProfileBuilder: what the CPU recorder and the heap
// profiles both need to turn a process's addresses into pprof locations.
//
// Mappings are interned per (pid, module start) and locations per (pid, pc), where pc is a
// leaf's address and a return address - 1. A return address is the instruction after a call,
// which may begin the next line or function; the call itself is at address - 1, inside the call
// instruction, where no sampled pc can be. So callers are looked up and interned there (perf's
// DWARF unwinder steps back the same byte): a leaf and a caller at one address are two
// locations, each with its own function, in whichever order they come.
#ifndef FRAMESCOPE_SYMBOLIZE_LOCATION_INTERNER_H_
#define FRAMESCOPE_SYMBOLIZE_LOCATION_INTERNER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "src/profile/profile.h"
#include "src/symbolize/symbolizer.h"

namespace fs::profile {

class LocationInterner {
 public:
  explicit LocationInterner(ProfileBuilder* b) : b_(b) {}

  // The location id of `address` in `pid`; a null symbolizer gives an unsymbolized location.
  uint64_t Location(Symbolizer* symbolizer, pid_t pid, uint64_t address, bool is_return_address);
  // The "[truncated stack]" location, made on first use.
  uint64_t Truncated();

 private:
  uint64_t MappingFor(pid_t pid, const Symbolized& s);

  ProfileBuilder* b_;
  std::map<std::pair<pid_t, std::string>, uint64_t> mappings_;
  std::map<std::pair<pid_t, uint64_t>, uint64_t> cache_;  // (pid, pc) -> location id.
  uint64_t truncated_ = 0;
};

}  // namespace fs::profile

#endif  // FRAMESCOPE_SYMBOLIZE_LOCATION_INTERNER_H_
