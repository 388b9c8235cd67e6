// A small declarative command-line parser shared by every executable.
//   FlagSet flags("framescope up", "Starts the reference system.");
//   int cameras = 10; flags.Int("cameras", &cameras, "number of simulated cameras");
//   if (auto st = flags.Parse(argc, argv); !st.ok()) ...
// Accepts --name=value and --name value; bools accept --name / --no-name. A value that looks
// like a flag (--x, or a registered -x) must use the = form, so a forgotten value is an error
// instead of swallowing the next flag. Doubles must be finite (no nan/inf).
// "--" ends flags; the rest is available from positional().
#ifndef FRAMESCOPE_BASE_FLAGS_H_
#define FRAMESCOPE_BASE_FLAGS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

class FlagSet {
 public:
  FlagSet(std::string command, std::string summary);

  void String(const std::string& name, std::string* value, const std::string& help);
  // A folder the command writes under: an empty value is refused (files would land under /).
  void Folder(const std::string& name, std::string* value, const std::string& help);
  void Int(const std::string& name, int* value, const std::string& help);
  void Double(const std::string& name, double* value, const std::string& help);
  void Bool(const std::string& name, bool* value, const std::string& help);
  // A flag that may be given more than once: each value is appended.
  void StringList(const std::string& name, std::vector<std::string>* values,
                  const std::string& help);
  // Lets `-<letter>` stand for `--<name>` (e.g. -o for --out). Register `name` first.
  void ShortName(char letter, const std::string& name);
  // Allows positional arguments, documented in usage as `positional_help`.
  void AllowPositional(const std::string& positional_help) { positional_help_ = positional_help; }

  // Parses argv[1..]. Returns an error for unknown flags or bad values. Sets help_requested()
  // for -h/--help (the caller prints Usage() and exits 0).
  Status Parse(int argc, char** argv);
  bool help_requested() const { return help_requested_; }
  // True if the flag was given explicitly on the command line.
  bool WasSet(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Usage() const;

  // Convenience for mains: parses, prints usage on --help (returns 0 via *exit_code) or an
  // error to stderr (exit 2). Returns true when the caller should continue.
  bool ParseOrExit(int argc, char** argv, int* exit_code);

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string type;
    std::string default_text;
    std::function<Status(const std::string&)> set;
    bool is_bool = false;
    bool* bool_value = nullptr;
  };
  Flag* Find(const std::string& name);
  Status CheckNotAFlag(const std::string& name, const std::string& next) const;

  std::string command_;
  std::string summary_;
  std::string positional_help_;
  std::vector<Flag> flags_;
  std::map<char, std::string> short_names_;  // letter -> flag name
  std::vector<std::string> positional_;
  std::vector<std::string> set_;
  bool help_requested_ = false;
};

// Parses "640x360" into width/height.
Status ParseResolution(const std::string& text, int* width, int* height);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_FLAGS_H_
