#include "tests/testing/postgres_fixture.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/base/file_util.h"
#include "src/base/net.h"
#include "src/system/process.h"

namespace fs::testing {
namespace {

pid_t ParentPid(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return -1;
  auto close_paren = stat->rfind(')');
  if (close_paren == std::string::npos) return -1;
  // ") S <ppid> ..."
  return static_cast<pid_t>(strtol(stat->c_str() + close_paren + 4, nullptr, 10));
}

}  // namespace

PostgresFixture::~PostgresFixture() {
  Thaw();
  Stop();
  if (!dir_.empty() && getenv("FRAMESCOPE_KEEP_TEST_DIRS") == nullptr) {
    (void)PostgresCluster::Purge(dir_);
  }
}

bool PostgresFixture::Start() {
  skip_reason_ = PostgresCluster::Unavailable();
  if (!skip_reason_.empty()) return false;
  char tmpl[] = "/tmp/fs-pg-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    skip_reason_ = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  cluster_ = std::make_unique<PostgresCluster>(dir_);
  auto port = PickFreePort();
  Status st = port.ok() ? cluster_->Init(log_path()) : port.status();
  if (st.ok()) {
    port_ = *port;
    st = Launch();
  }
  if (!st.ok()) {
    // Not a skip: the binaries are here, so a failure to start is a real error.
    skip_reason_ = "private PostgreSQL failed: " + st.message();
    ADD_FAILURE() << skip_reason_ << " (log: " << log_path() << ")";
    return false;
  }
  auto url = cluster_->Url(port_, "framescope");
  if (!url.ok()) {
    skip_reason_ = url.status().message();
    return false;
  }
  url_ = *url;
  return true;
}

Status PostgresFixture::Launch() {
  ASSIGN_OR_RETURN(pid_, SpawnProcess(cluster_->ServerArgv(port_, /*durable=*/false), log_path(),
                                      cluster_->run_as()));
  return cluster_->WaitReady(port_, pid_, "framescope", 30000);
}

void PostgresFixture::Stop(bool kill_hard) {
  if (pid_ <= 0) return;
  if (kill_hard) {
    pid_t postmaster = pid_;
    auto children = FindProcesses([postmaster](pid_t p) { return ParentPid(p) == postmaster; });
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    // Its backends notice the death and exit on their own; a restart before they have would
    // find their shared memory still attached.
    for (int i = 0; i < 500; ++i) {
      bool any = false;
      for (pid_t c : children) any |= ProcessAlive(c);
      if (!any) break;
      usleep(20000);
    }
  } else {
    TerminateProcess(pid_, 20000, SIGINT);
  }
  pid_ = -1;
}

Status PostgresFixture::Restart() {
  if (!cluster_) return Err("fixture not started");
  Stop();
  return Launch();
}

void PostgresFixture::Freeze() {
  if (pid_ <= 0) return;
  frozen_ = FindProcesses([this](pid_t p) { return p == pid_ || ParentPid(p) == pid_; });
  for (pid_t p : frozen_) kill(p, SIGSTOP);
}

void PostgresFixture::Thaw() {
  for (pid_t p : frozen_) kill(p, SIGCONT);
  frozen_.clear();
}

}  // namespace fs::testing
