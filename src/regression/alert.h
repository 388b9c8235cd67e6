// Alerts of `framescope compare` on a regression: a command run with the verdict JSON on its
// standard input, and an HTTP POST of the same JSON. Each attempt's failure is kept, so the
// caller reports it on stderr and in compare.json ("alerts"): an alert is never silently lost.
#ifndef FRAMESCOPE_REGRESSION_ALERT_H_
#define FRAMESCOPE_REGRESSION_ALERT_H_

#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"

namespace fs::regression {

struct AlertResult {
  std::string kind;    // "command" or "url"
  std::string target;  // the command line or the URL
  bool ok = false;
  int attempts = 0;
  std::vector<std::string> errors;  // one per failed attempt
};

// Runs `command` with /bin/sh -c, `json` on its stdin (a file: it need not read it); ok when it
// exits 0 within timeout_ms, else it is killed with its process group. Its stdout and stderr are
// copied to our stderr until it exits; what it leaves in the background is not waited for.
AlertResult RunAlertCommand(const std::string& command, const std::string& json,
                            int timeout_ms = 30000);

// http://host[:port]/path (plain HTTP only; port 80 by default). Refused: https, a space or
// control character, user:password@, a port that is not 1-65535 in plain digits, a host that
// is not a name or IPv4 address (an [IPv6] literal).
struct HttpUrl {
  std::string host;
  int port = 80;
  std::string path = "/";
};
StatusOr<HttpUrl> ParseHttpUrl(const std::string& url);
// Ok when PostAlert can use `url` (ParseHttpUrl accepts it); for checking settings early, e.g.
// at `schedule install`, rather than failing on every run.
Status ValidateAlertUrl(const std::string& url);

// POSTs `json` (application/json) to `url`; a transport error or a non-2xx status is a failed
// attempt, retried up to `attempts` times with doubling waits from backoff_ms.
AlertResult PostAlert(const std::string& url, const std::string& json, int attempts = 3,
                      int backoff_ms = 500, int timeout_ms = 5000);

Json AlertsToJson(const std::vector<AlertResult>& alerts);

}  // namespace fs::regression

#endif  // FRAMESCOPE_REGRESSION_ALERT_H_
