#ifndef LATENCY_SERVER_API_HTTP_GATEWAY_H_
#define LATENCY_SERVER_API_HTTP_GATEWAY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/tls.h"
#include "server/api/http_front.h"
#include "server/api/prometheus.h"
#include "server/api/query.h"
#include "server/api/watch_slots.h"

namespace latency {

class HttpRoutes;

struct HttpGatewayOptions {
  std::string listen = "0.0.0.0:5000";  // host:port; port 0 picks one
  // Connections, timeouts, header limits and workers (HttpFront).
  HttpFrontOptions front;
  size_t max_body_bytes = 4096;  // larger request bodies get 413
  // HTTPS with these certificates (reloaded per handshake); null: HTTP.
  std::shared_ptr<ServerCertificates> tls;
  // When set, every route but /healthz and /readyz needs "Authorization:
  // Bearer TOKEN"; others get 401 with WWW-Authenticate: Bearer.
  std::shared_ptr<BearerTokenAuth> auth;
  // Open /v1/watch event streams in all and from one client address (0:
  // no per-client cap); more get 429.
  int max_watch_streams = 64;
  int max_watch_streams_per_client = 8;
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
  // /readyz: what works only in part while the server stays ready (history
  // degraded, with the fix); empty or unset when nothing does.
  std::function<std::string()> ready_note;
};

// HttpGateway is latency-server's HTTP side: HttpFront holds the
// connections (one event loop, timeouts per request, connection caps, TLS)
// and cpp-httplib (Debian's libcpp-httplib-dev) parses each complete request
// and routes it. httplib's own server loop is not used: it ties a worker
// thread to each connection and times out per read, so 16 clients sending
// a header byte every few seconds stalled every route, health checks
// included.
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

  int port() const;
  void Shutdown();

 private:
  struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };

  HttpGateway(const HttpGatewayOptions& options, const QueryHandler& query,
              HttpGatewayHooks hooks);
  void InstallRoutes();
  HttpReply Answer(const HttpExchange& exchange);

  const QueryHandler& query_;
  HttpGatewayHooks hooks_;
  std::shared_ptr<ServerCertificates> tls_;  // outlives ssl_ctx_
  std::shared_ptr<BearerTokenAuth> auth_;
  size_t max_body_bytes_;
  // Open event streams, shared with their close callbacks.
  std::shared_ptr<WatchSlots> watch_slots_;
  std::unique_ptr<HttpRoutes> routes_;
  std::unique_ptr<SSL_CTX, SslCtxFree> ssl_ctx_;
  std::unique_ptr<HttpFront> front_;  // first to stop: it calls routes_
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_HTTP_GATEWAY_H_
