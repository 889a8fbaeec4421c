#include "server/server_app.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "server/prober/icmp_socket.h"
#include "server/prober/resolver.h"

namespace latency {
namespace {

std::string Ms(std::optional<int64_t> ns) {
  return ns ? absl::StrFormat("%.3f", static_cast<double>(*ns) / 1e6) : "-";
}

}  // namespace

ServerApp::ServerApp(const ServerOptions& options, Clock& clock)
    : options_(options), clock_(clock) {}

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Start(
    const ServerOptions& options, Clock& clock) {
  if (options.targets.empty()) {
    return absl::InvalidArgumentError("no targets: give --target or --config");
  }
  auto log = Logger("server");
  std::unique_ptr<ServerApp> app(new ServerApp(options, clock));
  if (absl::Status status = app->LoadCredentials(); !status.ok()) {
    return status;
  }
  app->store_ =
      std::make_unique<ResultStore>(clock, options.targets, options.thresholds);

  bool any_icmp = false;
  {
    absl::MutexLock lock(&app->mu_);
    app->runtime_.resize(options.targets.size());
  }
  std::vector<std::optional<IpAddress>> addresses(options.targets.size());
  for (size_t i = 0; i < options.targets.size(); ++i) {
    const TargetSpec& target = options.targets[i];
    any_icmp = any_icmp || target.icmp_enabled;
    absl::StatusOr<IpAddress> address = ResolveHost(target.host, target.family);
    if (address.ok()) {
      addresses[i] = *address;
      absl::MutexLock lock(&app->mu_);
      app->runtime_[i].address = address->ToString();
    } else {
      // Not fatal: the name may resolve later; until then probes fail with
      // "address not resolved".
      log->warn("target {}: {}", target.name, address.status().message());
    }
  }

  if (any_icmp) {
    absl::StatusOr<std::unique_ptr<IcmpSocket>> v4 =
        OpenIcmpSocket(false, clock);
    absl::StatusOr<std::unique_ptr<IcmpSocket>> v6 =
        OpenIcmpSocket(true, clock);
    if (!v4.ok())
      log->error("ICMP disabled for IPv4: {}", v4.status().message());
    if (!v6.ok())
      log->warn("ICMP disabled for IPv6: {}", v6.status().message());
    app->icmp_available_ = v4.ok() || v6.ok();
    app->icmp_ = std::make_unique<IcmpProber>(
        clock, *app->store_, v4.ok() ? std::move(*v4) : nullptr,
        v6.ok() ? std::move(*v6) : nullptr);
    for (size_t i = 0; i < options.targets.size(); ++i) {
      const TargetSpec& target = options.targets[i];
      if (!target.icmp_enabled) continue;
      IcmpTarget icmp;
      icmp.target_index = static_cast<int>(i);
      icmp.address = addresses[i];
      icmp.payload_bytes = target.icmp_payload_bytes;
      icmp.interval_ns = absl::ToInt64Nanoseconds(target.interval);
      icmp.timeout_ns = absl::ToInt64Nanoseconds(target.timeout);
      app->icmp_->AddTarget(icmp);
    }
    app->icmp_->Start();
  }

  app->grpc_ = std::make_unique<GrpcProber>(clock, *app->store_);
  for (size_t i = 0; i < options.targets.size(); ++i) {
    const TargetSpec& target = options.targets[i];
    if (!target.grpc_enabled) continue;
    // Reconnect backoff capped at the interval: a restarted agent is seen
    // again within about two intervals.
    auto channel =
        MakeProbeChannel(GrpcTargetFor(target.host, target.grpc_port),
                         target.interval, app->probe_credentials_);
    GrpcTarget grpc;
    grpc.target_index = static_cast<int>(i);
    grpc.name = target.name;
    grpc.interval_ns = absl::ToInt64Nanoseconds(target.interval);
    grpc.timeout_ns = absl::ToInt64Nanoseconds(target.timeout);
    grpc.payload_bytes = target.grpc_payload_bytes;
    app->grpc_->AddTarget(grpc, target.grpc_mode == GrpcProbeMode::kStream
                                    ? MakeStreamEchoClient(channel, clock)
                                    : MakeUnaryEchoClient(channel));
  }
  app->grpc_->Start();

  app->probing_ = true;
  if (absl::Status status = app->StartQuerySurfaces(); !status.ok()) {
    app->Shutdown();
    return status;
  }
  app->last_status_.assign(2 * options.targets.size(), ProbeStatus::kUnknown);
  app->housekeeping_ = std::thread([raw = app.get()] { raw->Housekeeping(); });
  log->info("probing {} targets", options.targets.size());
  return app;
}

ServerApp::~ServerApp() { Shutdown(); }

absl::Status ServerApp::LoadCredentials() {
  if (!options_.auth_token_file.empty()) {
    absl::StatusOr<std::shared_ptr<BearerTokenAuth>> auth =
        BearerTokenAuth::FromFile(options_.auth_token_file);
    if (!auth.ok()) return auth.status();
    auth_ = std::move(*auth);
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
  if (icmp_) icmp_->Stop();
  if (grpc_) grpc_->Stop();
}

absl::Status ServerApp::StartQuerySurfaces() {
  auto log = Logger("server");
  query_ = std::make_unique<QueryHandler>(
      *store_, [this](int target) { return AddressOf(target); });
  if (!options_.grpc_listen.empty()) {
    latency_service_ = std::make_unique<LatencyServiceImpl>(
        *query_, *store_, options_.max_watchers);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.grpc_listen,
                             MakeServerCredentials(grpc_certs_, auth_),
                             &grpc_port_);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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
    http.tls = http_certs_;
    http.auth = auth_;
    HttpGatewayHooks hooks;
    hooks.gauges = [this] {
      ProberGauges gauges;
      gauges.icmp_max_lag_ns = TakeMaxLagNs(ProbeKind::kIcmp);
      gauges.grpc_max_lag_ns = TakeMaxLagNs(ProbeKind::kGrpc);
      gauges.icmp_available = icmp_available_;
      return gauges;
    };
    hooks.counters_of = [this](int target) { return CountersOf(target); };
    hooks.ready = [this] { return probing_.load(); };
    absl::StatusOr<std::unique_ptr<HttpGateway>> gateway =
        HttpGateway::Start(http, *query_, std::move(hooks));
    if (!gateway.ok()) return gateway.status();
    http_gateway_ = std::move(*gateway);
  }
  return absl::OkStatus();
}

TargetCounters ServerApp::CountersOf(int target) const {
  TargetCounters counters;
  const TargetSpec& spec = options_.targets[target];
  if (icmp_ && spec.icmp_enabled) {
    const IcmpTargetCounters& icmp = icmp_->counters(target);
    counters.icmp_late_replies = icmp.late_replies;
    counters.icmp_duplicate_replies = icmp.duplicate_replies;
    counters.icmp_mismatched_replies = icmp.mismatched_replies;
    counters.skipped_probes += icmp.skipped_probes;
  }
  if (grpc_ && spec.grpc_enabled) {
    const GrpcTargetCounters& grpc = grpc_->counters(target);
    counters.grpc_late_replies = grpc.late_replies;
    counters.grpc_channel_state_changes = grpc.channel_state_changes;
    counters.skipped_probes += grpc.skipped_probes;
  }
  return counters;
}

std::string ServerApp::AddressOf(int target) const {
  absl::MutexLock lock(&mu_);
  return runtime_.at(target).address;
}

int64_t ServerApp::TakeMaxLagNs(ProbeKind kind) {
  if (kind == ProbeKind::kIcmp) return icmp_ ? icmp_->TakeMaxLagNs() : 0;
  return grpc_ ? grpc_->TakeMaxLagNs() : 0;
}

void ServerApp::Housekeeping() {
  int64_t next_report = clock_.MonotonicNanos() +
                        absl::ToInt64Nanoseconds(options_.report_interval);
  int64_t next_resolve =
      clock_.MonotonicNanos() + absl::ToInt64Nanoseconds(options_.dns_refresh);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(250));
      if (stop_) return;
    }
    LogTransitions();
    int64_t now = clock_.MonotonicNanos();
    if (options_.report_interval > absl::ZeroDuration() && now >= next_report) {
      LogReport();
      next_report = now + absl::ToInt64Nanoseconds(options_.report_interval);
    }
    if (now >= next_resolve) {
      Reresolve();
      next_resolve = now + absl::ToInt64Nanoseconds(options_.dns_refresh);
    }
  }
}

void ServerApp::LogTransitions() {
  auto log = Logger("server");
  for (size_t i = 0; i < options_.targets.size(); ++i) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      ProbeView view = store_->Probe(static_cast<int>(i), kind);
      if (!view.enabled) continue;
      ProbeStatus& previous = last_status_[2 * i + (kind == ProbeKind::kGrpc)];
      if (view.status == previous) continue;
      std::string cause;
      if (view.last && view.last->result != SampleResult::kOk) {
        cause = " (" + view.last->error + ")";
      }
      auto level = view.status == ProbeStatus::kOk ? spdlog::level::info
                                                   : spdlog::level::warn;
      log->log(level, "target {} {}: {} -> {}{}", options_.targets[i].name,
               ProbeKindName(kind), ProbeStatusName(previous),
               ProbeStatusName(view.status), cause);
      previous = view.status;
    }
  }
}

void ServerApp::LogReport() {
  auto log = Logger("server");
  for (size_t i = 0; i < options_.targets.size(); ++i) {
    std::string line = options_.targets[i].name;
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      ProbeView view = store_->Probe(static_cast<int>(i), kind);
      if (!view.enabled) continue;
      WindowSnapshot s =
          store_->Snapshot(static_cast<int>(i), kind, absl::Minutes(1));
      line += absl::StrFormat(
          " | %s %s p50=%s ms p99=%s ms loss=%s%%", ProbeKindName(kind),
          ProbeStatusName(view.status), Ms(s.p50_ns), Ms(s.p99_ns),
          s.loss_percent ? absl::StrFormat("%.1f", *s.loss_percent) : "-");
    }
    log->info("1m: {}", line);
  }
}

void ServerApp::Reresolve() {
  auto log = Logger("server");
  for (size_t i = 0; i < options_.targets.size(); ++i) {
    const TargetSpec& target = options_.targets[i];
    if (IpAddress::Parse(target.host)) continue;  // literal: nothing to do
    absl::StatusOr<IpAddress> address = ResolveHost(target.host, target.family);
    if (!address.ok()) {
      log->warn("target {}: {} (keeping the previous address)", target.name,
                address.status().message());
      continue;
    }
    std::string text = address->ToString();
    {
      absl::MutexLock lock(&mu_);
      if (runtime_[i].address == text) continue;
      log->info("target {}: {} now resolves to {}", target.name, target.host,
                text);
      runtime_[i].address = text;
    }
    if (icmp_ && target.icmp_enabled) {
      icmp_->UpdateAddress(static_cast<int>(i), *address);
    }
  }
}

}  // namespace latency
