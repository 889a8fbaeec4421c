#include "server/server_app.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/listen.h"
#include "common/logging.h"
#include "common/wire_tap.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace latency {
namespace {

// True unless `listen` (HOST:PORT) names a loopback host: 0.0.0.0, [::],
// an empty host and any other address answer other machines.
bool ReachableOffHost(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  absl::string_view host =
      colon == absl::string_view::npos ? listen : listen.substr(0, colon);
  absl::ConsumePrefix(&host, "[");
  absl::ConsumeSuffix(&host, "]");
  return !(absl::StartsWith(host, "127.") || host == "::1" ||
           host == "localhost");
}

}  // namespace

ServerApp::ServerApp(const ServerOptions& options, Clock& clock)
    : options_(options), clock_(clock) {}

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Start(
    const ServerOptions& options, Clock& clock) {
  // Refuse a taken port before probing starts, with the same message for
  // both surfaces.
  for (const auto& [flag, listen] :
       {std::pair{"--grpc_listen", options.grpc_listen},
        std::pair{"--http_listen", options.http_listen}}) {
    if (listen.empty()) continue;
    if (absl::Status status = CheckListenAddress(flag, listen); !status.ok()) {
      return status;
    }
  }
  std::unique_ptr<ServerApp> app(new ServerApp(options, clock));
  if (absl::Status status = app->LoadCredentials(); !status.ok()) {
    return status;
  }
  std::unique_ptr<WireTap> wire_tap;
  if (options.wire_stamps && options.probe_tls.enabled()) {
    Logger("server")->warn(
        "--wire_stamps is off with --probe_tls_* (a tap sees only encrypted "
        "records): gRPC network RTT from handler stamps");
  } else if (options.wire_stamps) {
    absl::StatusOr<std::unique_ptr<WireTap>> tap = OpenWireStampsTap();
    if (!tap.ok()) return tap.status();
    wire_tap = std::move(*tap);
    Logger("server")->info(
        "wire stamps on: gRPC network RTT from kernel stamps where the agent "
        "stamps too (its samples are recorded one interval late)");
  }
  absl::StatusOr<std::shared_ptr<ProbingSession>> session =
      ProbingSession::Start(options.targets, options.thresholds, clock,
                            app->probe_credentials_,
                            !options.history.path.empty(), std::move(wire_tap));
  if (!session.ok()) return session.status();
  {
    absl::MutexLock lock(&app->mu_);
    app->session_ = std::move(*session);
  }
  app->probing_ = true;
  if (!options.history.path.empty()) {
    app->history_ = std::make_unique<HistoryWriter>(
        clock, options.history, [raw = app.get()] {
          std::shared_ptr<ProbingSession> current = raw->Session();
          return current ? current->store() : nullptr;
        });
    app->history_->Start();
  }
  if (absl::Status status = app->StartQuerySurfaces(); !status.ok()) {
    app->Shutdown();
    return status;
  }
  app->housekeeping_ = std::thread([raw = app.get()] { raw->Housekeeping(); });
  return app;
}

std::shared_ptr<ProbingSession> ServerApp::Session() const {
  absl::MutexLock lock(&mu_);
  return session_;
}

absl::Status ServerApp::ReloadTargets(const std::vector<TargetSpec>& targets,
                                      const StatusThresholds& thresholds) {
  absl::MutexLock reload(&reload_mu_);
  std::shared_ptr<ProbingSession> current = Session();
  if (current != nullptr && current->store()->targets() == targets &&
      current->store()->thresholds() == thresholds) {
    // E.g. a SIGHUP for a certificate rotation: probers, channels, counters
    // and Watch streams carry on untouched.
    Logger("server")->info("configuration reloaded: targets unchanged");
    return absl::OkStatus();
  }
  {
    absl::MutexLock lock(&mu_);
    if (stop_ || current == nullptr) {
      return absl::CancelledError("server is stopping");
    }
  }
  // In place: only new, changed and removed targets start or stop. The
  // probers' global settings (TLS towards the agents, --source) are read at
  // start and not by a reload (the TLS files themselves are re-read in
  // place), so no reload needs to rebuild every prober.
  if (absl::Status status = current->Reload(targets, thresholds);
      !status.ok()) {
    return status;
  }
  Logger("server")->info("configuration reloaded: {} targets", targets.size());
  return absl::OkStatus();
}

ServerApp::~ServerApp() { Shutdown(); }

absl::Status ServerApp::LoadCredentials() {
  if (!options_.auth_token_file.empty()) {
    absl::StatusOr<std::shared_ptr<BearerTokenAuth>> auth =
        BearerTokenAuth::FromFile(options_.auth_token_file);
    if (!auth.ok()) return auth.status();
    auth_ = std::move(*auth);
  }
  if (!options_.grpc_client_sans.empty() &&
      !options_.grpc_tls.require_client_cert) {
    return absl::InvalidArgumentError(
        "--grpc_tls_client_san: needs --grpc_tls_client_ca (mTLS on the "
        "query API)");
  }
  if (options_.grpc_tls.enabled() && !options_.grpc_listen.empty()) {
    absl::StatusOr<std::shared_ptr<ServerCertificates>> certs =
        ServerCertificates::Create(options_.grpc_tls, "grpc",
                                   options_.tls_poll_interval);
    if (!certs.ok()) return certs.status();
    grpc_certs_ = std::move(*certs);
  }
  if (options_.http_tls.enabled() && !options_.http_listen.empty()) {
    if (!options_.http_tls.ca.empty()) {
      return absl::InvalidArgumentError(
          "--http_tls_client_ca: client certificates are not supported on "
          "the HTTP gateway");
    }
    absl::StatusOr<std::shared_ptr<ServerCertificates>> certs =
        ServerCertificates::Create(options_.http_tls, "http",
                                   options_.tls_poll_interval);
    if (!certs.ok()) return certs.status();
    http_certs_ = std::move(*certs);
  }
  // One credentials object for every agent: its files are watched once.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> probe =
      MakeChannelCredentials(options_.probe_tls, options_.tls_poll_interval);
  if (!probe.ok()) return probe.status();
  probe_credentials_ = std::move(*probe);
  auto log = Logger("server");
  if (options_.probe_tls.enabled()) {
    log->info("probing agents over TLS{}", options_.probe_tls.cert.empty()
                                               ? ""
                                               : " with a client certificate");
  }
  if (auth_ != nullptr &&
      ((grpc_certs_ == nullptr && !options_.grpc_listen.empty()) ||
       (http_certs_ == nullptr && !options_.http_listen.empty()))) {
    log->warn(
        "--auth_token_file without TLS on every query surface: the token "
        "crosses the network in clear text");
  }
  // The HTTP gateway listens on all interfaces by default (the seed's
  // contract: curl http://SERVER:5000/metrics); say loudly what that means
  // without a token.
  for (const auto& [surface, listen] :
       {std::pair{"gRPC query API", options_.grpc_listen},
        std::pair{"HTTP gateway", options_.http_listen}}) {
    if (auth_ == nullptr && !listen.empty() && ReachableOffHost(listen)) {
      log->warn(
          "{} on {} answers anyone who can reach this host, without a token: "
          "set --auth_token_file (with TLS), firewall the port, or listen on "
          "127.0.0.1",
          surface, listen);
    }
  }
  return absl::OkStatus();
}

void ServerApp::ReloadCredentials() {
  if (grpc_certs_ == nullptr && http_certs_ == nullptr && auth_ == nullptr) {
    Logger("server")->info("SIGHUP: no TLS or token files to reload");
  }
  if (grpc_certs_ != nullptr) grpc_certs_->Reload().IgnoreError();  // logged
  if (http_certs_ != nullptr) http_certs_->Reload().IgnoreError();
  if (auth_ != nullptr) auth_->Reload().IgnoreError();
}

void ServerApp::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  probing_ = false;
  health_service_.Shutdown();
  if (http_gateway_) http_gateway_->Shutdown();
  if (grpc_server_) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(options_.drain_timeout));
    grpc_server_->Wait();
  }
  if (housekeeping_.joinable()) housekeeping_.join();
  absl::MutexLock reload(&reload_mu_);
  if (std::shared_ptr<ProbingSession> session = Session()) session->Stop();
  // After the probers: every minute so far, the current one too.
  if (history_) history_->Stop();
}

absl::Status ServerApp::StartQuerySurfaces() {
  auto log = Logger("server");
  query_ = std::make_unique<QueryHandler>([this] {
    std::shared_ptr<ProbingSession> session = Session();
    auto [store, address_of] = session->ReaderView();
    StoreView view{std::move(store),
                   [session, address_of = std::move(address_of)](int target) {
                     return address_of(target);
                   },
                   options_.source};
    if (history_) {
      view.history = history_->db();
      view.history_health = history_->health();
      view.history_retention = options_.history.retention;
    }
    return view;
  });
  if (!options_.grpc_listen.empty()) {
    latency_service_ = std::make_unique<LatencyServiceImpl>(
        *query_, options_.max_watchers, options_.max_watchers_per_client);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(
        options_.grpc_listen,
        MakeServerCredentials(grpc_certs_, auth_, options_.grpc_client_sans),
        &grpc_port_);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Per connection: one client cannot hold unbounded calls or streams.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               options_.max_concurrent_streams);
    builder.SetMaxReceiveMessageSize(64 * 1024);
    builder.RegisterService(latency_service_.get());
    builder.RegisterService(&health_service_);
    grpc_server_ = builder.BuildAndStart();
    if (grpc_server_ == nullptr || grpc_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("--grpc_listen: cannot listen on ", options_.grpc_listen,
                       " (address in use, or not an address of this host?)"));
    }
    health_service_.SetStatus("",
                              grpc::health::v1::HealthCheckResponse::SERVING);
    health_service_.SetStatus(v1::LatencyService::service_full_name(),
                              grpc::health::v1::HealthCheckResponse::SERVING);
    log->info("gRPC query service on port {} (listen {}, {}{})", grpc_port_,
              options_.grpc_listen,
              grpc_certs_ == nullptr                  ? "plaintext"
              : options_.grpc_tls.require_client_cert ? "mTLS"
                                                      : "TLS",
              auth_ != nullptr ? ", bearer token required" : "");
  }
  if (!options_.http_listen.empty()) {
    HttpGatewayOptions http;
    http.listen = options_.http_listen;
    http.front = options_.http_front;
    http.tls = http_certs_;
    http.auth = auth_;
    http.max_watch_streams = options_.max_watchers;
    http.max_watch_streams_per_client = options_.max_watchers_per_client;
    HttpGatewayHooks hooks;
    hooks.gauges = [this] {
      std::shared_ptr<ProbingSession> session = Session();
      ProberGauges gauges;
      const int64_t now_ns = clock_.MonotonicNanos();
      gauges.icmp_max_lag_ns = session->MaxLagNs(ProbeKind::kIcmp, now_ns);
      gauges.grpc_max_lag_ns = session->MaxLagNs(ProbeKind::kGrpc, now_ns);
      gauges.icmp_available = session->icmp_available();
      return gauges;
    };
    // Counters and the exposition's store may come from configurations a
    // reload apart; CountersOf answers zeros for an index the current one
    // lacks.
    hooks.counters_of = [this](int target) {
      return Session()->CountersOf(target);
    };
    hooks.ready = [this] { return probing_.load(); };
    hooks.not_ready = [this] {
      std::shared_ptr<ProbingSession> session = Session();
      const std::string why = session->icmp_no_permission();
      return why.empty() ? std::string() : "ICMP not permitted: " + why;
    };
    hooks.ready_note = [this] {
      if (!history_) return std::string();
      HistoryHealth health = history_->health();
      return health.state == HistoryHealth::State::kDegraded
                 ? "history degraded: " + health.why
                 : std::string();
    };
    absl::StatusOr<std::unique_ptr<HttpGateway>> gateway =
        HttpGateway::Start(http, *query_, std::move(hooks));
    if (!gateway.ok()) return gateway.status();
    http_gateway_ = std::move(*gateway);
  }
  return absl::OkStatus();
}

void ServerApp::Housekeeping() {
  int64_t next_report = clock_.MonotonicNanos() +
                        absl::ToInt64Nanoseconds(options_.report_interval);
  int64_t next_resolve =
      clock_.MonotonicNanos() + absl::ToInt64Nanoseconds(options_.dns_refresh);
  // Status changes are logged within a second: each pass visits every
  // series (at 100k targets, four passes a second took 7% of a core).
  constexpr int64_t kTransitionPassNs = 1'000'000'000;
  int64_t next_transitions = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(250));
      if (stop_) return;
    }
    std::shared_ptr<ProbingSession> session = Session();
    int64_t now = clock_.MonotonicNanos();
    if (now >= next_transitions) {
      session->LogTransitions();
      next_transitions = now + kTransitionPassNs;
    }
    if (options_.report_interval > absl::ZeroDuration() && now >= next_report) {
      session->LogReport();
      next_report = now + absl::ToInt64Nanoseconds(options_.report_interval);
    }
    if (now >= next_resolve) {
      session->Reresolve();
      next_resolve = now + absl::ToInt64Nanoseconds(options_.dns_refresh);
    }
  }
}

}  // namespace latency
