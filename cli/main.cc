// latencyctl: the latency pair's command-line client. Flags go into a
// CliConfig; latency_cli_lib validates them and runs the command.
#include <atomic>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/flags/flag.h"
#include "cli/latencyctl.h"
#include "common/flags.h"
#include "common/signals.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50052",
          "latency-server gRPC query address (host:port)");
ABSL_FLAG(std::string, output, "table", "table or json");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(2), "deadline of each call");
ABSL_FLAG(std::string, window, "1m",
          "stats: window, 1m, 5m, 15m or 1h (1m, as the server's default)");
ABSL_FLAG(std::string, kind, "",
          "watch: icmp, grpc or all (default all); history: icmp or grpc "
          "(default the target's ICMP, else gRPC)");
ABSL_FLAG(absl::Duration, since, absl::Hours(1),
          "history: how far back from now");
ABSL_FLAG(absl::Duration, step, absl::ZeroDuration(),
          "history: point spacing (0 = about 300 points; snaps to whole "
          "minutes or hours)");
ABSL_FLAG(std::optional<int32_t>, count, std::nullopt,
          "watch: stop after N samples (unset: until Ctrl-C); echo: number "
          "of echoes (unset: 5); 0 = until Ctrl-C");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "echo: time between echoes (positive)");
ABSL_FLAG(int32_t, payload_bytes, 0, "echo: payload size in bytes");
ABSL_FLAG(std::string, mode, "unary", "echo: unary or stream");
ABSL_FLAG(bool, tls, false,
          "use TLS (implied by --tls_ca/--tls_cert); without --tls_ca the "
          "system's CA roots verify the server");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle that the server's (or agent's) certificate must "
          "chain to");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate, for servers that require one (mTLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding latency-server's bearer token (as its "
          "--auth_token_file); sent over TLS only, never to agents");

int main(int argc, char** argv) {
  // SIGHUP keeps its default action: watch dies with its terminal.
  latency::BlockInterruptSignals();
  std::vector<std::string> argv_aliased =
      latency::RewriteFlagAliases(std::vector<std::string>(argv, argv + argc));
  std::vector<char*> flags;
  for (std::string& arg : argv_aliased) flags.push_back(arg.data());
  std::vector<std::string> args =
      latency::ParseFlags(static_cast<int>(flags.size()), flags.data(),
                          "latencyctl", latency::kLatencyctlUsage);
  std::atomic<bool> stop{false};
  std::thread([&stop] {
    latency::WaitForInterruptSignal();
    stop = true;
  }).detach();

  latency::CliConfig config;
  config.server = absl::GetFlag(FLAGS_server);
  config.output = absl::GetFlag(FLAGS_output);
  config.timeout = absl::GetFlag(FLAGS_timeout);
  config.window = absl::GetFlag(FLAGS_window);
  config.kind = absl::GetFlag(FLAGS_kind);
  config.since = absl::GetFlag(FLAGS_since);
  config.step = absl::GetFlag(FLAGS_step);
  config.count = absl::GetFlag(FLAGS_count);
  config.interval = absl::GetFlag(FLAGS_interval);
  config.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  config.mode = absl::GetFlag(FLAGS_mode);
  config.tls = latency::ClientTlsFiles(
      "--tls_", absl::GetFlag(FLAGS_tls), absl::GetFlag(FLAGS_tls_ca),
      absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key));
  config.token_file = absl::GetFlag(FLAGS_auth_token_file);
  return latency::RunLatencyctl(args, config, std::cout, std::cerr, &stop);
}
