// framescope-apiclient: open-loop load generator for framescope-api. All logic lives in
// fs_api (api_client.h).
#include <cstdio>
#include <utility>

#include "services/api/api_client.h"
#include "services/common/service.h"
#include "src/base/flags.h"
#include "src/base/logging.h"

int main(int argc, char** argv) {
  fs::ServiceRuntime runtime("apiclient");
  fs::api::ApiClientOptions options;
  fs::FlagSet flags(
      "framescope-apiclient",
      "Sends framescope-api a steady mix of requests at --rate per second, open loop (each\n"
      "request is due at start + k/rate whatever the earlier ones did; latency counts from\n"
      "the due time). Per 10 requests: 1 /cameras, 3 /cameras/{id}/stats?window=1m, 1 with\n"
      "window=1h, 4 /detections?camera={id}&limit=50, 1 /health. Every report interval logs\n"
      "  apiclient: rate 49.8 req/s ok 498 err 0 p50 3.1 ms p90 5.0 ms p99 9.2 ms\n"
      "(err: non-200 answers, transport failures and requests dropped when the backlog\n"
      "exceeds 1 s), and at the end the same for the whole run. /metrics on the metrics\n"
      "port has framescope_client_request_duration_seconds{source=\"apiclient\",\n"
      "target=\"api\",op=<route>}. Exit codes: 0 done, 1 api address not found, 2 bad flags.\n"
      "Example: framescope-apiclient --api-url http://127.0.0.1:8080 --rate 50 --cameras 10");
  fs::api::AddApiClientFlags(&flags, &options);
  runtime.AddFlags(&flags);
  int exit_code = 0;
  if (!flags.ParseOrExit(argc, argv, &exit_code)) return exit_code;
  if (fs::Status st = fs::api::FinishApiClientOptions(flags, &options); !st.ok()) {
    std::fprintf(stderr, "framescope-apiclient: %s\n", st.message().c_str());
    return 2;
  }
  if (fs::Status st = fs::api::RunApiClient(std::move(options), &runtime); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  return 0;
}
