// Kernel symbol names for sampled kernel addresses, from /proc/kallsyms.
//
// kallsyms lists every kernel (and loaded module) text symbol as "ADDRESS TYPE NAME [MODULE]".
// When kernel.kptr_restrict hides addresses from us every address reads 0: the table is then
// empty and kernel frames stay "[kernel]+0xADDRESS" (the report says why).
#ifndef FRAMESCOPE_SYMBOLIZE_KERNEL_SYMBOLS_H_
#define FRAMESCOPE_SYMBOLIZE_KERNEL_SYMBOLS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fs::profile {

struct KernelSymbol {
  std::string name;
  std::string module;   // "[kernel.kallsyms]" or "[<module name>]".
  uint64_t offset = 0;  // address - symbol start.
};

class KernelSymbols {
 public:
  // Parses kallsyms text; only text symbols (t/T/w/W) are kept. Lines that do not parse are
  // skipped and counted.
  static KernelSymbols Parse(std::string_view text);
  // The running kernel's table, read once per process (thread-safe); empty when unreadable.
  static const KernelSymbols& System();

  // The symbol containing `address` (the last symbol at or below it, within 1 MiB); false when
  // the table is empty or the address is below every symbol.
  bool Lookup(uint64_t address, KernelSymbol* out) const;

  size_t size() const { return entries_.size(); }
  size_t skipped_lines() const { return skipped_; }
  // False when kallsyms was unreadable or its addresses are hidden (kptr_restrict).
  bool available() const { return !entries_.empty(); }

 private:
  struct Entry {
    uint64_t address;
    uint32_t name;    // Offset into names_.
    uint32_t module;  // Index into modules_.
  };
  std::vector<Entry> entries_;  // Sorted by address.
  std::string names_;           // NUL-separated.
  std::vector<std::string> modules_;
  size_t skipped_ = 0;
};

}  // namespace fs::profile

#endif  // FRAMESCOPE_SYMBOLIZE_KERNEL_SYMBOLS_H_
