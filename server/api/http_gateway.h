#ifndef LATENCY_SERVER_API_HTTP_GATEWAY_H_
#define LATENCY_SERVER_API_HTTP_GATEWAY_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/tls.h"
#include "server/api/prometheus.h"
#include "server/api/query.h"

namespace httplib {
class Server;
}

namespace latency {

struct HttpGatewayOptions {
  std::string listen = "0.0.0.0:5000";  // host:port; port 0 picks one
  int threads = 16;                     // worker threads (keep-alive conns)
  size_t max_body_bytes = 4096;         // larger request bodies get 413
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
  // HTTPS with these certificates (reloaded per handshake); null: HTTP.
  std::shared_ptr<ServerCertificates> tls;
  // When set, every route but /healthz and /readyz needs "Authorization:
  // Bearer TOKEN"; others get 401 with WWW-Authenticate: Bearer.
  std::shared_ptr<BearerTokenAuth> auth;
};

// What the gateway needs besides the query handler, as callbacks so it stays
// a pure reader: Prometheus gauges and counters, and readiness.
struct HttpGatewayHooks {
  std::function<ProberGauges()> gauges;
  std::function<TargetCounters(int)> counters_of;
  std::function<bool()> ready;  // /readyz: probers running
  // /readyz: why probing cannot do what it was asked (e.g. no ICMP
  // permission, with the fix); empty or unset when it can.
  std::function<std::string()> not_ready;
};

// HttpGateway is latency-server's HTTP side, on cpp-httplib (Debian's
// libcpp-httplib-dev): a packaged, maintained HTTP/1.1 server with a thread
// pool, keep-alive, and request-line/header/body limits built in — chosen
// over Boost.Beast for its small API and because it needs no hand-written
// parsing or connection handling on our side.
//
// Routes (GET only; other methods on them get 405):
//   /metrics            the original tool's JSON ({"latency_ms": ..,
//                       "status": ..}, = GetLatency), Prometheus text or
//                       OpenMetrics as NegotiateMetricsFormat picks from
//                       Accept (406 when none is acceptable), or as
//                       ?format=json|prometheus|openmetrics says; always
//                       with Vary: Accept
//   /v1/latency[?target=NAME]             GetLatency
//   /v1/targets                           ListTargets
//   /v1/targets/NAME/stats[?window=5m]    GetTargetStats
//   /  /assets/NAME   the dashboard (server/web), embedded files with a
//                     strict CSP and ETags; open without the token (the
//                     page asks for it and sends it on its API calls)
//   /healthz  200 while the process serves; /readyz 200 once probing, else
//             503 (also when ICMP is not permitted; the body says the fix)
// Every body is protobuf's JSON mapping of the LatencyService messages (the
// same QueryHandler answers gRPC), errors are ErrorResponse JSON with the
// matching status (400, 401, 404, 405, 413, 414, 500). With options.tls it
// serves HTTPS only (cpp-httplib's SSLServer, TLS 1.2+).
class HttpGateway {
 public:
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(
      const HttpGatewayOptions& options, const QueryHandler& query,
      HttpGatewayHooks hooks);
  ~HttpGateway();

  int port() const { return port_; }
  void Shutdown();

 private:
  HttpGateway(const HttpGatewayOptions& options, const QueryHandler& query,
              HttpGatewayHooks hooks);
  void InstallRoutes();

  const QueryHandler& query_;
  HttpGatewayHooks hooks_;
  std::shared_ptr<ServerCertificates> tls_;  // outlives server_
  std::shared_ptr<BearerTokenAuth> auth_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_HTTP_GATEWAY_H_
