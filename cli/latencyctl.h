#ifndef LATENCY_CLI_LATENCYCTL_H_
#define LATENCY_CLI_LATENCYCTL_H_

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/tls.h"

namespace latency {

// latencyctl's usage text (commands, examples, exit codes), shown by --help
// and after a usage error.
extern const char kLatencyctlUsage[];

// CliConfig is latencyctl's flags as given, before validation. Defaults
// match the flags'.
struct CliConfig {
  std::string server = "127.0.0.1:50052";  // latency-server query address
  std::string output = "table";            // table | json
  absl::Duration timeout = absl::Seconds(2);
  std::string window = "5m";  // stats
  std::string kind;           // watch: "", all, icmp or grpc
  int32_t count = 0;          // watch: samples, 0 = until stopped
  int32_t echo_count = 5;     // echo -c: echoes, 0 = until stopped
  absl::Duration interval = absl::Seconds(1);  // echo
  int32_t payload_bytes = 0;                   // echo
  std::string mode = "unary";                  // echo: unary | stream
  // TLS to the server or agent (--tls, --tls_ca, --tls_cert, --tls_key);
  // plaintext when none is set.
  TlsFiles tls = ClientTlsFiles("--tls_", false, "", "", "");
  // File holding the bearer token sent with every call (--token_file).
  std::string token_file;
};

// Runs the command in `args` (the positional arguments: COMMAND [ARG]):
// status [TARGET], targets, stats TARGET, watch [TARGET], echo AGENT.
// Validates `config` first; a missing or unknown command, a wrong number of
// arguments or a bad flag value prints "latencyctl: PROBLEM" and the usage
// to `err` and returns kExitError; so does an unusable TLS or token file.
// Otherwise connects (TLS when config.tls is enabled, with the token when
// given) and returns the command's exit code. `stop` (may be null) ends watch
// and echo.
int RunLatencyctl(const std::vector<std::string>& args, const CliConfig& config,
                  std::ostream& out, std::ostream& err,
                  const std::atomic<bool>* stop);

}  // namespace latency

#endif  // LATENCY_CLI_LATENCYCTL_H_
