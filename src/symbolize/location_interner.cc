#include "src/symbolize/location_interner.h"

#include <vector>

namespace fs::profile {

uint64_t LocationInterner::Location(Symbolizer* symbolizer, pid_t pid, uint64_t address,
                                    bool is_return_address) {
  const uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
  auto key = std::make_pair(pid, pc);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  uint64_t id;
  if (symbolizer == nullptr) {
    id = b_->InternLocation(0, pc);
  } else {
    Symbolized s = symbolizer->Lookup(pc);
    uint64_t mapping = MappingFor(pid, s);
    std::vector<Line> lines;
    for (const Frame& f : s.frames) {
      if (f.function.empty()) continue;
      lines.push_back({b_->InternFunction(f.function, f.file), f.line});
    }
    id = b_->InternLocation(mapping, pc, std::move(lines));
  }
  cache_[key] = id;
  return id;
}

uint64_t LocationInterner::Truncated() {
  if (truncated_ == 0) {
    truncated_ = b_->InternLocation(0, 0, {{b_->InternFunction("[truncated stack]"), 0}});
  }
  return truncated_;
}

uint64_t LocationInterner::MappingFor(pid_t pid, const Symbolized& s) {
  auto key = std::make_pair(pid, s.module + "@" + std::to_string(s.module_start));
  if (auto it = mappings_.find(key); it != mappings_.end()) {
    Mapping& m = b_->profile().mappings[it->second - 1];
    if (s.resolved()) m.has_functions = true;
    return it->second;
  }
  Mapping m;
  m.start = s.module_start;
  m.limit = s.module_end;
  m.file = s.module;
  m.build_id = s.build_id;
  m.has_functions = s.resolved();
  uint64_t id = b_->AddMapping(m);
  mappings_[key] = id;
  return id;
}

}  // namespace fs::profile
