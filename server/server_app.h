#ifndef LATENCY_SERVER_SERVER_APP_H_
#define LATENCY_SERVER_SERVER_APP_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/health_service.h"
#include "common/tls.h"
#include "server/api/http_gateway.h"
#include "server/api/latency_service.h"
#include "server/api/query.h"
#include "server/history/history_writer.h"
#include "server/probing_session.h"
#include "server/stats/status.h"
#include "server/store/result_store.h"
#include "server/target.h"

namespace latency {

// ServerOptions are latency-server's resolved settings (flags + config).
struct ServerOptions {
  std::vector<TargetSpec> targets;
  StatusThresholds thresholds;
  // Where this server measures from: metrics' `source` label and API
  // answers' `source` (--source, else the config's, else the host name).
  // Read at start; a reload keeps it.
  std::string source;
  // How often a one-line summary per target is logged; 0 disables it.
  absl::Duration report_interval = absl::Seconds(60);
  // How often DNS names are resolved again.
  absl::Duration dns_refresh = absl::Seconds(60);
  // Query surfaces: gRPC LatencyService and the HTTP gateway (port 0 = any;
  // an empty address disables that surface).
  std::string grpc_listen = "0.0.0.0:50052";
  std::string http_listen = "0.0.0.0:5000";
  // The HTTP gateway's connection limits and timeouts.
  HttpFrontOptions http_front;
  int max_watchers = 64;
  // Watch streams one client address may hold (0: no per-client cap).
  int max_watchers_per_client = 8;
  // Concurrent calls and streams one client connection may have open.
  int max_concurrent_streams = 100;
  // How long shutdown lets in-flight queries finish.
  absl::Duration drain_timeout = absl::Seconds(1);
  // TLS of the gRPC query API (mTLS when a client CA is set) and of the HTTP
  // gateway; plaintext when no file is set.
  TlsFiles grpc_tls = ServerTlsFiles("--grpc_tls_", "", "", "");
  TlsFiles http_tls = ServerTlsFiles("--http_tls_", "", "", "");
  // With mTLS on the query API: the subjectAltNames a client certificate
  // must carry one of (--grpc_tls_client_san); empty: any the CA signed.
  std::vector<std::string> grpc_client_sans;
  // The prober's TLS as a client of the agents (CA, client certificate).
  TlsFiles probe_tls = ClientTlsFiles("--probe_tls_", false, "", "", "");
  // File holding the bearer token the query API and HTTP gateway require
  // (health and reflection exempt); empty: no token needed.
  std::string auth_token_file;
  // How often TLS files are checked for changes (0: only on SIGHUP).
  absl::Duration tls_poll_interval = absl::Seconds(10);
  // Stored history (--history_db; an empty path turns it off).
  HistoryOptions history;
  // Stamp gRPC echoes on the wire (--wire_stamps; read once at start).
  bool wire_stamps = false;
};

// ServerApp wires latency-server: a ProbingSession (targets resolved, ICMP
// and gRPC probers feeding a ResultStore), the gRPC LatencyService (with
// health and reflection) and the HTTP gateway reading the current session's
// store, credentials, and a housekeeping thread that logs status
// transitions, periodic summaries and re-resolves DNS names.
//
// ReloadTargets applies a new configuration to the session in place without
// touching the listening sockets, so clients keep their connections.
class ServerApp {
 public:
  static absl::StatusOr<std::unique_ptr<ServerApp>> Start(
      const ServerOptions& options, Clock& clock);
  ~ServerApp();

  // The current configuration's store (it changes on ReloadTargets).
  ResultStore& store() { return *Session()->store(); }
  std::shared_ptr<ProbingSession> Session() const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the ICMP probe could start (sockets available).
  bool icmp_available() const { return Session()->icmp_available(); }
  // Bound ports of the query surfaces (0 when disabled).
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_gateway_ ? http_gateway_->port() : 0; }

  // Probes `targets` with `thresholds` from now on: only new or changed
  // targets start and only removed or changed ones stop; unchanged ones keep
  // their probing (channel, prober state, counters) and statistics. Watch
  // streams end and clients watch again. When nothing changed, nothing
  // restarts and Watch streams go on. On error (e.g. no targets) nothing
  // changes.
  absl::Status ReloadTargets(const std::vector<TargetSpec>& targets,
                             const StatusThresholds& thresholds);

  // Reads the TLS files and the token file again (SIGHUP). New connections
  // get the new certificates; a bad file is logged and the old one kept.
  void ReloadCredentials();

  void Shutdown();

 private:
  ServerApp(const ServerOptions& options, Clock& clock);
  void Housekeeping();
  absl::Status StartQuerySurfaces();
  absl::Status LoadCredentials();

  const ServerOptions options_;
  Clock& clock_;
  std::atomic<bool> probing_{false};

  std::shared_ptr<BearerTokenAuth> auth_;           // null: no token
  std::shared_ptr<ServerCertificates> grpc_certs_;  // null: plaintext
  std::shared_ptr<ServerCertificates> http_certs_;  // null: plaintext
  std::shared_ptr<grpc::ChannelCredentials> probe_credentials_;

  std::unique_ptr<HistoryWriter> history_;  // null: history off
  std::unique_ptr<QueryHandler> query_;
  std::unique_ptr<LatencyServiceImpl> latency_service_;
  HealthService health_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int grpc_port_ = 0;
  std::unique_ptr<HttpGateway> http_gateway_;

  mutable absl::Mutex mu_;
  std::shared_ptr<ProbingSession> session_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread housekeeping_;
  // Serializes reloads (SIGHUP) with each other and with Shutdown.
  absl::Mutex reload_mu_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_SERVER_APP_H_
