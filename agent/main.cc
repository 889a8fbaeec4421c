// latency-agent: answers gRPC echo (unary and streaming) with its own
// receive/send timestamps, plus health and reflection.
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent_server.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/signals.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051",
          "host:port to serve gRPC on; [::]:PORT for IPv6, port 0 for any");
ABSL_FLAG(int32_t, max_message_bytes, 1 << 20,
          "largest echo request accepted (bytes); larger requests get "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, max_concurrent_streams, 100,
          "calls and streams one client connection may have open at once");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(2),
          "on SIGTERM/SIGINT, how long in-flight calls may finish");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain; with --tls_key the agent serves TLS only. "
          "Re-read on SIGHUP and when the file changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; when set, clients must present a certificate it "
          "signed (mTLS)");
ABSL_FLAG(bool, wire_stamps, false,
          "stamp echo segments on the wire (needs CAP_NET_RAW; plaintext "
          "only) so the server's network RTT leaves out both hosts' stacks");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(std::string, log_format, "text", "text or json (one object a line)");

int main(int argc, char** argv) {
  latency::BlockShutdownSignals();
  // Debian's Abseil leaves the mutex deadlock detector on (no NDEBUG): a
  // lock-graph update on every lock, ours and gRPC's, about 9% of the
  // server's CPU at 10k targets (BENCHMARKS.md). Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  latency::ParseFlags(
      argc, argv, "latency-agent",
      "Answers latency.v1.EchoService (gRPC echo with receive/send stamps)\n"
      "for latency-server and latencyctl, plus health and reflection.\n\n"
      "Usage: latency-agent [--listen=0.0.0.0:50051] [flags]");

  if (absl::Status s = latency::SetupLogging(absl::GetFlag(FLAGS_log_level),
                                             absl::GetFlag(FLAGS_log_format));
      !s.ok()) {
    fprintf(stderr, "latency-agent: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  latency::AgentOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.wire_stamps = absl::GetFlag(FLAGS_wire_stamps);
  options.tls = latency::ServerTlsFiles("--tls_", absl::GetFlag(FLAGS_tls_cert),
                                        absl::GetFlag(FLAGS_tls_key),
                                        absl::GetFlag(FLAGS_tls_client_ca));

  auto agent =
      latency::AgentServer::Start(options, latency::RealClockInstance());
  if (!agent.ok()) {
    latency::Logger("agent")->critical("{}", agent.status().message());
    return agent.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  int sig = latency::WaitForShutdownSignal(
      [&agent] { (*agent)->ReloadCertificates(); });
  latency::Logger("agent")->info("signal {}: draining", sig);
  (*agent)->Shutdown();
  return 0;
}
