#include "src/base/flags.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace fs {

FlagSet::FlagSet(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void FlagSet::String(const std::string& name, std::string* value, const std::string& help) {
  flags_.push_back({name, help, "STRING", value->empty() ? "" : "\"" + *value + "\"",
                    [value](const std::string& v) {
                      *value = v;
                      return Status::Ok();
                    }});
}

void FlagSet::Folder(const std::string& name, std::string* value, const std::string& help) {
  flags_.push_back({name, help, "DIR", value->empty() ? "" : "\"" + *value + "\"",
                    [name, value](const std::string& v) {
                      if (v.empty()) return Err("--" + name + " must name a folder, not \"\"");
                      *value = v;
                      return Status::Ok();
                    }});
}

void FlagSet::StringList(const std::string& name, std::vector<std::string>* values,
                         const std::string& help) {
  flags_.push_back({name, help + " (repeatable)", "STRING", "", [values](const std::string& v) {
                      values->push_back(v);
                      return Status::Ok();
                    }});
}

void FlagSet::Int(const std::string& name, int* value, const std::string& help) {
  flags_.push_back({name, help, "INT", std::to_string(*value), [value, name](const std::string& v) {
                      char* end = nullptr;
                      errno = 0;
                      long parsed = strtol(v.c_str(), &end, 10);
                      if (v.empty() || *end != '\0' || errno != 0 || parsed < INT32_MIN ||
                          parsed > INT32_MAX) {
                        return Err("--" + name + ": expected an integer, got \"" + v + "\"");
                      }
                      *value = static_cast<int>(parsed);
                      return Status::Ok();
                    }});
}

void FlagSet::Double(const std::string& name, double* value, const std::string& help) {
  char def[32];
  snprintf(def, sizeof(def), "%g", *value);
  flags_.push_back({name, help, "NUM", def, [value, name](const std::string& v) {
                      char* end = nullptr;
                      double parsed = strtod(v.c_str(), &end);
                      // nan and inf parse, but no flag means them: a duration of inf would
                      // run until killed.
                      if (v.empty() || *end != '\0' || !std::isfinite(parsed)) {
                        return Err("--" + name + ": expected a finite number, got \"" + v + "\"");
                      }
                      *value = parsed;
                      return Status::Ok();
                    }});
}

void FlagSet::Bool(const std::string& name, bool* value, const std::string& help) {
  Flag f{name, help, "", *value ? "true" : "false", nullptr};
  f.is_bool = true;
  f.bool_value = value;
  flags_.push_back(std::move(f));
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (auto& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void FlagSet::ShortName(char letter, const std::string& name) { short_names_[letter] = name; }

bool FlagSet::WasSet(const std::string& name) const {
  return std::find(set_.begin(), set_.end(), name) != set_.end();
}

// `--state-dir --json` is a forgotten value, not a state dir named "--json": a value that
// looks like a flag must be given as --name=value.
Status FlagSet::CheckNotAFlag(const std::string& name, const std::string& next) const {
  const bool long_flag = next.size() > 2 && next.rfind("--", 0) == 0;
  const bool short_flag =
      next.size() == 2 && next[0] == '-' && (short_names_.count(next[1]) != 0 || next[1] == 'h');
  if (!long_flag && !short_flag) return Status::Ok();
  return Err("--" + name + " needs a value, but the next argument is the flag " + next +
             " (write --" + name + "=" + next + " if that is the value)");
}

Status FlagSet::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() == 2 && arg[0] == '-' && short_names_.count(arg[1])) {
      arg = "--" + short_names_[arg[1]];
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.push_back(argv[i]);
      break;
    }
    if (arg == "-h" || arg == "--help") {
      help_requested_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      if (positional_help_.empty()) return Err("unexpected argument \"" + arg + "\"");
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr && name.rfind("no-", 0) == 0) {
      Flag* negated = Find(name.substr(3));
      if (negated != nullptr && negated->is_bool && !has_value) {
        *negated->bool_value = false;
        set_.push_back(negated->name);
        continue;
      }
    }
    if (flag == nullptr) return Err("unknown flag --" + name + " (see --help)");
    set_.push_back(name);
    if (flag->is_bool) {
      if (!has_value) {
        *flag->bool_value = true;
      } else if (value == "true" || value == "1") {
        *flag->bool_value = true;
      } else if (value == "false" || value == "0") {
        *flag->bool_value = false;
      } else {
        return Err("--" + name + ": expected true or false, got \"" + value + "\"");
      }
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return Err("--" + name + " needs a value");
      RETURN_IF_ERROR(CheckNotAFlag(name, argv[i + 1]));
      value = argv[++i];
    }
    RETURN_IF_ERROR(flag->set(value));
  }
  return Status::Ok();
}

std::string FlagSet::Usage() const {
  std::string out = "usage: " + command_ + " [flags]";
  if (!positional_help_.empty()) out += " " + positional_help_;
  out += "\n\n" + summary_ + "\n\nflags:\n";
  for (const auto& f : flags_) {
    std::string letter;
    for (const auto& [c, name] : short_names_) {
      if (name == f.name) letter = std::string("-") + c + ", ";
    }
    std::string left = "  " + letter + "--" + f.name + (f.type.empty() ? "" : " " + f.type);
    if (left.size() < 28)
      left.resize(28, ' ');
    else
      left += "\n" + std::string(28, ' ');
    out += left + f.help;
    if (!f.default_text.empty()) out += " (default " + f.default_text + ")";
    out += "\n";
  }
  out += "  -h, --help                show this help\n";
  return out;
}

bool FlagSet::ParseOrExit(int argc, char** argv, int* exit_code) {
  Status st = Parse(argc, argv);
  if (help_requested_) {
    fputs(Usage().c_str(), stdout);
    *exit_code = 0;
    return false;
  }
  if (!st.ok()) {
    fprintf(stderr, "%s: %s\n", command_.c_str(), st.message().c_str());
    *exit_code = 2;
    return false;
  }
  return true;
}

Status ParseResolution(const std::string& text, int* width, int* height) {
  int w = 0, h = 0;
  char extra = 0;
  if (sscanf(text.c_str(), "%dx%d%c", &w, &h, &extra) != 2 || w < 16 || h < 16 || w > 7680 ||
      h > 4320 || w % 2 != 0 || h % 2 != 0) {
    return Err("resolution \"" + text + "\": expected WxH with even sizes between 16x16 and " +
               "7680x4320, e.g. 640x360");
  }
  *width = w;
  *height = h;
  return Status::Ok();
}

}  // namespace fs
