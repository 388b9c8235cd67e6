#include "src/symbolize/kernel_symbols.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "src/base/file_util.h"

namespace fs::profile {
namespace {

// Past the last symbol of a region (e.g. the end of a module) an address is not attributed to
// it if it is further than this.
constexpr uint64_t kMaxSymbolSpan = 1 << 20;

bool ParseHex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// Splits off the next space- or tab-separated field of `s`.
std::string_view NextField(std::string_view* s) {
  size_t start = s->find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    *s = {};
    return {};
  }
  size_t end = s->find_first_of(" \t", start);
  if (end == std::string_view::npos) end = s->size();
  std::string_view field = s->substr(start, end - start);
  s->remove_prefix(end);
  return field;
}

}  // namespace

KernelSymbols KernelSymbols::Parse(std::string_view text) {
  KernelSymbols t;
  t.modules_.push_back("[kernel.kallsyms]");
  std::unordered_map<std::string, uint32_t> module_ids;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;
    std::string_view rest = line;
    std::string_view addr = NextField(&rest), type = NextField(&rest), name = NextField(&rest);
    std::string_view module = NextField(&rest);
    uint64_t address = 0;
    if (!ParseHex(addr, &address) || type.size() != 1 || name.empty()) {
      ++t.skipped_;
      continue;
    }
    char ty = type[0];
    if (ty != 't' && ty != 'T' && ty != 'w' && ty != 'W') continue;
    if (address == 0) continue;  // Hidden by kptr_restrict.
    // End-of-region markers are not functions: an address past the kernel text must not be
    // "in _etext".
    if (name == "_etext" || name == "_einittext" || name == "_end" || name == "_edata" ||
        name == "__end_rodata" || name == "__bss_stop" || name == "__init_end") {
      continue;
    }
    uint32_t module_index = 0;
    if (module.size() > 2 && module.front() == '[' && module.back() == ']') {
      auto [it, inserted] =
          module_ids.try_emplace(std::string(module), static_cast<uint32_t>(t.modules_.size()));
      if (inserted) t.modules_.push_back(it->first);
      module_index = it->second;
    }
    t.entries_.push_back({address, static_cast<uint32_t>(t.names_.size()), module_index});
    t.names_.append(name);
    t.names_.push_back('\0');
  }
  std::stable_sort(t.entries_.begin(), t.entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.address < b.address; });
  return t;
}

const KernelSymbols& KernelSymbols::System() {
  static const KernelSymbols* table = [] {
    auto text = ReadFile("/proc/kallsyms");
    return new KernelSymbols(text.ok() ? Parse(*text) : KernelSymbols());
  }();
  return *table;
}

bool KernelSymbols::Lookup(uint64_t address, KernelSymbol* out) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), address,
                             [](uint64_t a, const Entry& e) { return a < e.address; });
  if (it == entries_.begin()) return false;
  const Entry& e = *std::prev(it);
  if (address - e.address > kMaxSymbolSpan) return false;
  out->name = names_.c_str() + e.name;
  out->module = modules_[e.module];
  out->offset = address - e.address;
  return true;
}

}  // namespace fs::profile
