#include "server/probing_session.h"

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "server/prober/icmp_socket.h"
#include "server/prober/resolver.h"

namespace latency {
namespace {

std::string Ms(std::optional<int64_t> ns) {
  return ns ? absl::StrFormat("%.3f", static_cast<double>(*ns) / 1e6) : "-";
}

}  // namespace

absl::StatusOr<std::shared_ptr<ProbingSession>> ProbingSession::Start(
    const std::vector<TargetSpec>& targets, const StatusThresholds& thresholds,
    Clock& clock, std::shared_ptr<grpc::ChannelCredentials> probe_credentials,
    const ResultStore* previous) {
  if (targets.empty()) {
    return absl::InvalidArgumentError("no targets: give --target or --config");
  }
  auto log = Logger("server");
  std::shared_ptr<ProbingSession> session(new ProbingSession(targets));
  session->store_ =
      std::make_shared<ResultStore>(clock, targets, thresholds, previous);
  // Start from what the store carried over from the previous session, so an
  // unchanged target does not log "unknown -> ok" again after a reload.
  session->last_status_.assign(2 * targets.size(), ProbeStatus::kUnknown);
  for (size_t i = 0; i < targets.size(); ++i) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      session->last_status_[2 * i + (kind == ProbeKind::kGrpc)] =
          session->store_->Probe(static_cast<int>(i), kind).status;
    }
  }

  bool any_icmp = false;
  std::vector<std::optional<IpAddress>> addresses(targets.size());
  {
    absl::MutexLock lock(&session->mu_);
    session->addresses_.resize(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      any_icmp = any_icmp || targets[i].icmp_enabled;
      absl::StatusOr<IpAddress> address =
          ResolveHost(targets[i].host, targets[i].family);
      if (address.ok()) {
        addresses[i] = *address;
        session->addresses_[i] = address->ToString();
      } else {
        // Not fatal: the name may resolve later; until then probes fail
        // with "address not resolved".
        log->warn("target {}: {}", targets[i].name, address.status().message());
      }
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
    session->icmp_available_ = v4.ok() || v6.ok();
    session->icmp_ = std::make_unique<IcmpProber>(
        clock, *session->store_, v4.ok() ? std::move(*v4) : nullptr,
        v6.ok() ? std::move(*v6) : nullptr);
    for (size_t i = 0; i < targets.size(); ++i) {
      if (!targets[i].icmp_enabled) continue;
      IcmpTarget icmp;
      icmp.target_index = static_cast<int>(i);
      icmp.address = addresses[i];
      icmp.payload_bytes = targets[i].icmp_payload_bytes;
      icmp.interval_ns = absl::ToInt64Nanoseconds(targets[i].interval);
      icmp.timeout_ns = absl::ToInt64Nanoseconds(targets[i].timeout);
      session->icmp_->AddTarget(icmp);
    }
    session->icmp_->Start();
  }

  session->grpc_ = std::make_unique<GrpcProber>(clock, *session->store_);
  for (size_t i = 0; i < targets.size(); ++i) {
    const TargetSpec& target = targets[i];
    if (!target.grpc_enabled) continue;
    // Reconnect backoff capped at the interval: a restarted agent is seen
    // again within about two intervals.
    auto channel =
        MakeProbeChannel(GrpcTargetFor(target.host, target.grpc_port),
                         target.interval, probe_credentials);
    GrpcTarget grpc;
    grpc.target_index = static_cast<int>(i);
    grpc.name = target.name;
    grpc.interval_ns = absl::ToInt64Nanoseconds(target.interval);
    grpc.timeout_ns = absl::ToInt64Nanoseconds(target.timeout);
    grpc.payload_bytes = target.grpc_payload_bytes;
    session->grpc_->AddTarget(grpc, target.grpc_mode == GrpcProbeMode::kStream
                                        ? MakeStreamEchoClient(channel, clock)
                                        : MakeUnaryEchoClient(channel));
  }
  session->grpc_->Start();
  log->info("probing {} targets", targets.size());
  return session;
}

ProbingSession::~ProbingSession() { Stop(); }

void ProbingSession::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (icmp_) icmp_->Stop();
  if (grpc_) grpc_->Stop();
  store_->CloseSubscriptions();
}

std::string ProbingSession::AddressOf(int target) const {
  absl::MutexLock lock(&mu_);
  return addresses_.at(target);
}

TargetCounters ProbingSession::CountersOf(int target) const {
  TargetCounters counters;
  const TargetSpec& spec = targets_[target];
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

int64_t ProbingSession::TakeMaxLagNs(ProbeKind kind) {
  if (kind == ProbeKind::kIcmp) return icmp_ ? icmp_->TakeMaxLagNs() : 0;
  return grpc_ ? grpc_->TakeMaxLagNs() : 0;
}

void ProbingSession::LogTransitions() {
  auto log = Logger("server");
  for (size_t i = 0; i < targets_.size(); ++i) {
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
      log->log(level, "target {} {}: {} -> {}{}", targets_[i].name,
               ProbeKindName(kind), ProbeStatusName(previous),
               ProbeStatusName(view.status), cause);
      previous = view.status;
    }
  }
}

void ProbingSession::LogReport() {
  auto log = Logger("server");
  for (size_t i = 0; i < targets_.size(); ++i) {
    std::string line = targets_[i].name;
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

void ProbingSession::Reresolve() {
  auto log = Logger("server");
  for (size_t i = 0; i < targets_.size(); ++i) {
    const TargetSpec& target = targets_[i];
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
      if (addresses_[i] == text) continue;
      log->info("target {}: {} now resolves to {}", target.name, target.host,
                text);
      addresses_[i] = text;
    }
    if (icmp_ && target.icmp_enabled) {
      icmp_->UpdateAddress(static_cast<int>(i), *address);
    }
  }
}

}  // namespace latency
