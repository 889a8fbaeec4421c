// latencyctl: the latency pair's command-line client.
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "cli/echo_command.h"
#include "common/flags.h"
#include "common/signals.h"

ABSL_FLAG(int32_t, c, 5, "echo: number of echoes, 0 = until Ctrl-C");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1), "echo: time between echoes");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(2), "deadline of each call");
ABSL_FLAG(int32_t, payload_bytes, 0, "echo: payload size in bytes");
ABSL_FLAG(std::string, mode, "unary", "echo: unary or stream");

namespace {

constexpr char kUsage[] =
    "latencyctl: query latency-server and echo latency-agents.\n\n"
    "Usage: latencyctl COMMAND [ARGS] [flags]\n\n"
    "Commands:\n"
    "  echo AGENT      gRPC echo to a latency-agent (host:port), ping-like\n\n"
    "Examples:\n"
    "  latencyctl echo 127.0.0.1:50051 --c=10\n"
    "  latencyctl echo agent.example:50051 --mode=stream --c=0\n\n"
    "Exit codes: 0 all ok, 1 some probe or target not ok, 2 usage or "
    "connection error.";

int Usage(const std::string& problem) {
  std::cerr << "latencyctl: " << problem << "\n\n" << kUsage << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  latency::BlockShutdownSignals();
  std::vector<std::string> args =
      latency::ParseFlags(argc, argv, "latencyctl", kUsage);
  if (args.empty()) return Usage("missing COMMAND");
  std::atomic<bool> stop{false};
  std::thread([&stop] {
    latency::WaitForShutdownSignal();
    stop = true;
  }).detach();

  if (args[0] == "echo") {
    if (args.size() != 2) return Usage("echo takes one AGENT (host:port)");
    latency::EchoOptions options;
    options.agent = args[1];
    options.count = absl::GetFlag(FLAGS_c);
    options.interval = absl::GetFlag(FLAGS_interval);
    options.timeout = absl::GetFlag(FLAGS_timeout);
    options.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
    std::string mode = absl::GetFlag(FLAGS_mode);
    if (mode != "unary" && mode != "stream") return Usage("--mode: want unary or stream");
    if (options.count < 0 || options.payload_bytes < 0) {
      return Usage("--c and --payload_bytes must not be negative");
    }
    options.stream = mode == "stream";
    auto channel = grpc::CreateChannel(options.agent,
                                       grpc::InsecureChannelCredentials());
    return latency::RunEcho(options, channel, latency::RealClockInstance(),
                            std::cout, &stop);
  }
  return Usage("unknown command '" + args[0] + "'");
}
