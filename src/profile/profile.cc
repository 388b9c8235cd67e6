#include "src/profile/profile.h"

#include <cinttypes>
#include <cstdio>

namespace fs::profile {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  return buf;
}

template <typename T>
const T* FindById(const std::vector<T>& items, uint64_t id) {
  for (const T& item : items) {
    if (item.id == id) return &item;
  }
  return nullptr;
}

}  // namespace

std::string ModuleBasename(const Mapping* mapping) {
  if (mapping == nullptr) return "";
  size_t slash = mapping->file.rfind('/');
  return slash == std::string::npos ? mapping->file : mapping->file.substr(slash + 1);
}

std::string FunctionDisplayName(const Function* function) {
  if (function == nullptr) return "[unknown]";
  if (!function->name.empty()) return function->name;
  return function->system_name.empty() ? "[unknown]" : function->system_name;
}

std::string AddressDisplayName(const Location& location, const Mapping* mapping) {
  if (mapping == nullptr) return Hex(location.address);
  std::string module = ModuleBasename(mapping);
  return (module.empty() ? "[unknown]" : module) + "+" +
         Hex(location.address - mapping->start + mapping->offset);
}

const Mapping* Profile::FindMapping(uint64_t id) const { return FindById(mappings, id); }
const Location* Profile::FindLocation(uint64_t id) const { return FindById(locations, id); }
const Function* Profile::FindFunction(uint64_t id) const { return FindById(functions, id); }

uint64_t ProfileBuilder::AddMapping(Mapping mapping) {
  mapping.id = profile_.mappings.size() + 1;
  profile_.mappings.push_back(std::move(mapping));
  return profile_.mappings.back().id;
}

uint64_t ProfileBuilder::InternFunction(const std::string& name, const std::string& filename,
                                        const std::string& system_name, int64_t start_line) {
  auto [it, inserted] = functions_.try_emplace({name, filename}, profile_.functions.size() + 1);
  if (inserted) {
    profile_.functions.push_back(Function{.id = it->second,
                                          .name = name,
                                          .system_name = system_name,
                                          .filename = filename,
                                          .start_line = start_line});
  }
  return it->second;
}

uint64_t ProfileBuilder::InternLocation(uint64_t mapping_id, uint64_t address,
                                        std::vector<Line> lines) {
  LineKey line_key;
  if (address == 0) {
    for (const Line& line : lines) line_key.emplace_back(line.function_id, line.line);
  }
  auto [it, inserted] = locations_.try_emplace({mapping_id, address, std::move(line_key)},
                                               profile_.locations.size() + 1);
  if (inserted) {
    profile_.locations.push_back(Location{
        .id = it->second, .mapping_id = mapping_id, .address = address, .lines = std::move(lines)});
  }
  return it->second;
}

}  // namespace fs::profile
