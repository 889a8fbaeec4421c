#ifndef LATENCY_CLI_LATENCYCTL_H_
#define LATENCY_CLI_LATENCYCTL_H_

#include <atomic>
#include <cstdint>
#include <optional>
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
  std::string window = "1m";              // stats (the server's default too)
  absl::Duration since = absl::Hours(1);  // history: range up to now
  absl::Duration step = absl::ZeroDuration();  // history: 0 = server default
  std::string kind;                            // watch: "", all, icmp or grpc
  // watch: samples (unset = until stopped); echo: echoes (unset = 5);
  // 0 = until stopped.
  std::optional<int32_t> count;
  absl::Duration interval = absl::Seconds(1);  // echo; must be positive
  int32_t payload_bytes = 0;                   // echo
  std::string mode = "unary";                  // echo: unary | stream
  // TLS to the server or agent (--tls, --tls_ca, --tls_cert, --tls_key);
  // plaintext when none is set.
  TlsFiles tls = ClientTlsFiles("--tls_", false, "", "", "");
  // File holding the bearer token sent to latency-server over TLS
  // (--auth_token_file); never sent to agents or in clear.
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
// Old flag spellings kept as hidden aliases: -c/--c is --count and
// --token_file is --auth_token_file (the server's name). Returns `args`
// (argv, program first) with them renamed; stops at "--".
std::vector<std::string> RewriteFlagAliases(std::vector<std::string> args);

int RunLatencyctl(const std::vector<std::string>& args, const CliConfig& config,
                  std::ostream& out, std::ostream& err,
                  const std::atomic<bool>* stop);

}  // namespace latency

#endif  // LATENCY_CLI_LATENCYCTL_H_
