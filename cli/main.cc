// latencyctl: the latency pair's command-line client. Flags go into a
// CliConfig; latency_cli_lib validates them and runs the command.
#include <atomic>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "cli/latencyctl.h"
#include "common/flags.h"
#include "common/signals.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50052",
          "latency-server gRPC query address (host:port)");
ABSL_FLAG(std::string, output, "table", "table or json");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(2), "deadline of each call");
ABSL_FLAG(std::string, window, "5m", "stats: window, 1m, 5m, 15m or 1h");
ABSL_FLAG(std::string, kind, "", "watch: icmp, grpc or all (default all)");
ABSL_FLAG(int32_t, count, 0, "watch: stop after N samples, 0 = until Ctrl-C");
ABSL_FLAG(int32_t, c, 5, "echo: number of echoes, 0 = until Ctrl-C");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "echo: time between echoes");
ABSL_FLAG(int32_t, payload_bytes, 0, "echo: payload size in bytes");
ABSL_FLAG(std::string, mode, "unary", "echo: unary or stream");

int main(int argc, char** argv) {
  latency::BlockShutdownSignals();
  std::vector<std::string> args =
      latency::ParseFlags(argc, argv, "latencyctl", latency::kLatencyctlUsage);
  std::atomic<bool> stop{false};
  std::thread([&stop] {
    latency::WaitForShutdownSignal();
    stop = true;
  }).detach();

  latency::CliConfig config;
  config.server = absl::GetFlag(FLAGS_server);
  config.output = absl::GetFlag(FLAGS_output);
  config.timeout = absl::GetFlag(FLAGS_timeout);
  config.window = absl::GetFlag(FLAGS_window);
  config.kind = absl::GetFlag(FLAGS_kind);
  config.count = absl::GetFlag(FLAGS_count);
  config.echo_count = absl::GetFlag(FLAGS_c);
  config.interval = absl::GetFlag(FLAGS_interval);
  config.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  config.mode = absl::GetFlag(FLAGS_mode);
  return latency::RunLatencyctl(args, config, std::cout, std::cerr, &stop);
}
