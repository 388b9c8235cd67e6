#include "src/symbolize/test_program.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

namespace fs::profile {

TestProgram::TestProgram(const std::string& path, const std::vector<std::string>& args) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return;
  }
  std::vector<char*> argv = {const_cast<char*>(path.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_child_ = in[1];
  from_child_ = fdopen(out[0], "r");
  if (from_child_ == nullptr) close(out[0]);
  ready_ = pid_ > 0 && ReadUntil("ready");
}

TestProgram::~TestProgram() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ != nullptr) fclose(from_child_);
}

bool TestProgram::Ask(const std::string& line, const std::string& marker) {
  const std::string text = line + "\n";
  if (to_child_ < 0 ||
      write(to_child_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return false;
  }
  return ReadUntil(marker);
}

uint64_t TestProgram::Value(const std::string& key, size_t i) const {
  auto it = values_.find(key);
  return it == values_.end() || i >= it->second.size() ? 0 : it->second[i];
}

bool TestProgram::ReadUntil(const std::string& marker) {
  char buf[512];
  while (from_child_ != nullptr && fgets(buf, sizeof(buf), from_child_) != nullptr) {
    std::istringstream line(buf);
    std::string key, hex;
    line >> key;
    if (key == marker) return true;
    if (!(line >> hex)) continue;
    std::vector<uint64_t> values = {std::stoull(hex, nullptr, 16)};
    for (uint64_t v; line >> v;) values.push_back(v);
    values_[key] = values;
  }
  return false;
}

}  // namespace fs::profile
