#ifndef LATENCY_AGENT_AGENT_SERVER_H_
#define LATENCY_AGENT_AGENT_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/echo_service.h"
#include "common/clock.h"
#include "common/health_service.h"
#include "common/tls.h"
#include "grpcpp/grpcpp.h"

namespace latency {

// AgentOptions are latency-agent's settings (its flags).
struct AgentOptions {
  // host:port to listen on; port 0 picks a free port (see AgentServer::port).
  std::string listen = "0.0.0.0:50051";
  // Largest request accepted; larger ones get RESOURCE_EXHAUSTED.
  int max_message_bytes = 1 << 20;
  // Concurrent calls and streams one connection may have open; more wait.
  int max_concurrent_streams = 100;
  // How long Shutdown() lets in-flight calls finish before cancelling them.
  absl::Duration drain_timeout = absl::Seconds(2);
  // Path of the sysctl reported by GetAgentInfo.
  std::string icmp_echo_sysctl_path = "/proc/sys/net/ipv4/icmp_echo_ignore_all";
  // Reported hostname; empty means the host's name.
  std::string hostname;
  // TLS (--tls_cert, --tls_key; mTLS with --tls_client_ca); plaintext when
  // no file is set.
  TlsFiles tls = ServerTlsFiles("--tls_", "", "", "");
  // How often the TLS files are checked for changes (0: only on SIGHUP).
  absl::Duration tls_poll_interval = absl::Seconds(10);
  // Stamp the echo traffic on the wire (--wire_stamps; needs CAP_NET_RAW)
  // and report each echo's wire hold on the connection's later replies.
  bool wire_stamps = false;
};

// Checks options a user can get wrong; the message names the flag.
absl::Status ValidateAgentOptions(const AgentOptions& options);

// AgentServer is a running latency-agent: EchoService, the standard health
// service (SERVING while up) and server reflection on one gRPC server.
class AgentServer {
 public:
  // Validates `options`, builds and starts the server. Fails when the address
  // cannot be bound (Unavailable) or the TLS files are unusable
  // (InvalidArgument naming the flag).
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(
      const AgentOptions& options, Clock& clock);

  ~AgentServer();

  // The bound port (the real one when the options asked for port 0).
  int port() const { return port_; }

  // In-process channel to this server, for tests.
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // Reads the TLS files again (SIGHUP); new connections get the new
  // certificates, a bad set is logged and the current one kept.
  void ReloadCertificates();

  // Reports NOT_SERVING, lets in-flight calls finish for up to the drain
  // timeout, then cancels the rest. Idempotent.
  void Shutdown();

 private:
  AgentServer(const AgentOptions& options, Clock& clock,
              const std::string& hostname);

  const AgentOptions options_;
  std::unique_ptr<WireHolds> wire_holds_;  // null without --wire_stamps
  EchoServiceImpl echo_service_;
  HealthService health_service_;
  std::shared_ptr<ServerCertificates> certificates_;  // null: plaintext
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

// The host's name from gethostname(), or "unknown".
std::string LocalHostname();

}  // namespace latency

#endif  // LATENCY_AGENT_AGENT_SERVER_H_
