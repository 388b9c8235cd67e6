#include "src/profile/folded.h"

#include <charconv>
#include <map>
#include <string_view>
#include <unordered_map>

namespace fs::profile {
namespace {

std::string SanitizeFrame(std::string name) {
  for (char& c : name) {
    if (c == ';' || c == '\n' || c == '\r') c = '_';
  }
  return name;
}

}  // namespace

std::string ToFolded(const Profile& profile, int value_index) {
  if (value_index < 0 || static_cast<size_t>(value_index) >= profile.sample_types.size()) {
    return "";
  }
  std::unordered_map<uint64_t, const Mapping*> mappings;
  std::unordered_map<uint64_t, const Function*> functions;
  for (const Mapping& m : profile.mappings) mappings[m.id] = &m;
  for (const Function& f : profile.functions) functions[f.id] = &f;

  // Each location's frames, outermost first, rendered once.
  std::unordered_map<uint64_t, std::string> location_text;
  for (const Location& loc : profile.locations) {
    std::string text;
    for (auto it = loc.lines.rbegin(); it != loc.lines.rend(); ++it) {
      auto fn = functions.find(it->function_id);
      if (!text.empty()) text += ';';
      text += SanitizeFrame(FunctionDisplayName(fn != functions.end() ? fn->second : nullptr));
    }
    if (text.empty()) {
      auto m = mappings.find(loc.mapping_id);
      text = SanitizeFrame(AddressDisplayName(loc, m != mappings.end() ? m->second : nullptr));
    }
    location_text[loc.id] = std::move(text);
  }

  std::map<std::string, int64_t> stacks;  // sorted: deterministic output
  for (const Sample& s : profile.samples) {
    if (static_cast<size_t>(value_index) >= s.values.size()) continue;
    std::string stack;
    for (auto it = s.location_ids.rbegin(); it != s.location_ids.rend(); ++it) {
      auto text = location_text.find(*it);
      if (!stack.empty()) stack += ';';
      stack += text != location_text.end() ? text->second : "[unknown]";
    }
    if (stack.empty()) stack = "[unknown]";
    stacks[stack] += s.values[static_cast<size_t>(value_index)];
  }

  std::string out;
  for (const auto& [stack, count] : stacks) {
    if (count == 0) continue;
    out += stack;
    out += ' ';
    out += std::to_string(count);
    out += '\n';
  }
  return out;
}

StatusOr<std::vector<FoldedStack>> ParseFolded(const std::string& text) {
  std::vector<FoldedStack> out;
  std::string_view rest = text;
  for (int line_no = 1; !rest.empty(); ++line_no) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;

    auto error = [line_no](const std::string& why) {
      return Err("folded line " + std::to_string(line_no) + ": " + why);
    };
    size_t space = line.find_last_of(" \t");
    if (space == std::string_view::npos) return error("missing count");
    std::string_view count_text = line.substr(space + 1);
    std::string_view stack = line.substr(0, space);
    while (!stack.empty() && (stack.back() == ' ' || stack.back() == '\t')) stack.remove_suffix(1);
    if (count_text.empty()) return error("missing count");
    if (count_text.front() == '-') {
      return error("negative count '" + std::string(count_text) + "'");
    }
    FoldedStack folded;
    auto [ptr, ec] =
        std::from_chars(count_text.data(), count_text.data() + count_text.size(), folded.count);
    if (ec == std::errc::result_out_of_range) {
      return error("count '" + std::string(count_text) + "' out of range");
    }
    if (ec != std::errc() || ptr != count_text.data() + count_text.size()) {
      // "a;b" alone has its last frame mistaken for a count: say which it probably is.
      return error("count '" + std::string(count_text) + "' is not a non-negative integer" +
                   (stack.empty() ? " (missing count?)" : ""));
    }
    if (stack.empty()) return error("empty stack");
    size_t start = 0;
    for (;;) {
      size_t semi = stack.find(';', start);
      std::string_view frame = stack.substr(start, semi - start);
      if (frame.empty()) return error("empty frame in stack");
      folded.frames.emplace_back(frame);
      if (semi == std::string_view::npos) break;
      start = semi + 1;
    }
    out.push_back(std::move(folded));
  }
  return out;
}

}  // namespace fs::profile
