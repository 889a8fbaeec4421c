#include "server/probing_session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "server/prober/icmp_socket.h"
#include "server/prober/resolver.h"

namespace latency {
namespace {

// Concurrent name resolutions (getaddrinfo blocks, one per thread).
constexpr int kResolverThreads = 8;

std::string Ms(std::optional<int64_t> ns) {
  return ns ? absl::StrFormat("%.3f", static_cast<double>(*ns) / 1e6) : "-";
}

}  // namespace

absl::StatusOr<std::shared_ptr<ProbingSession>> ProbingSession::Start(
    const std::vector<TargetSpec>& targets, const StatusThresholds& thresholds,
    Clock& clock, std::shared_ptr<grpc::ChannelCredentials> probe_credentials,
    const ProbingSession* previous) {
  if (targets.empty()) {
    return absl::InvalidArgumentError("no targets: give --target or --config");
  }
  auto log = Logger("server");
  std::shared_ptr<ProbingSession> session(
      new ProbingSession(targets, clock, probe_credentials));
  session->store_ = std::make_shared<ResultStore>(
      clock, targets, thresholds,
      previous != nullptr ? previous->store_.get() : nullptr);
  // Targets whose settings a reload left alone, by index here -> there:
  // they keep their channel, their address and their probers' counters.
  std::vector<std::optional<int>> kept(targets.size());
  if (previous != nullptr) {
    for (size_t i = 0; i < targets.size(); ++i) {
      std::optional<int> j = previous->store_->FindTarget(targets[i].name);
      if (j && previous->targets_[*j] == targets[i]) kept[i] = *j;
    }
  }
  // Series carried over from the previous session start from their
  // current status, so a reload logs no "unknown -> ok" for them.
  session->last_status_.resize(2 * targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      session->last_status_[2 * i + (kind == ProbeKind::kGrpc)] =
          session->store_->Probe(static_cast<int>(i), kind).status;
    }
  }

  bool any_icmp = false;
  {
    absl::MutexLock lock(&session->mu_);
    session->addresses_.resize(targets.size());
    session->resolved_.resize(targets.size());
    session->resolving_.assign(targets.size(), false);
    session->channels_.resize(targets.size());
    session->channel_uris_.resize(targets.size());
    session->kept_channels_.resize(targets.size());
    session->kept_uris_.resize(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      any_icmp = any_icmp || targets[i].icmp_enabled;
      // Literals are probed at once; names as they resolve, except that a
      // kept target starts from the address it had.
      if (std::optional<IpAddress> literal =
              IpAddress::Parse(targets[i].host)) {
        session->resolved_[i] = *literal;
        session->addresses_[i] = literal->ToString();
      }
      if (kept[i]) {
        absl::MutexLock previous_lock(&previous->mu_);
        const int j = *kept[i];
        if (!session->resolved_[i] && previous->resolved_[j]) {
          session->resolved_[i] = previous->resolved_[j];
          session->addresses_[i] = previous->addresses_[j];
        }
        session->kept_channels_[i] = previous->channels_[j];
        session->kept_uris_[i] = previous->channel_uris_[j];
      }
    }
  }
  {
    absl::MutexLock lock(&session->mu_);
    session->resolver_ = std::make_shared<ResolverPool>(kResolverThreads);
  }
  session->Reresolve();

  std::unique_ptr<IcmpSocket> v4_socket, v6_socket;
  // No permission is not an outage: those series read no_permission (with
  // the fix), not down, and send nothing.
  bool denied[2] = {false, false};
  std::string denied_why[2];
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
    if (v4.ok()) v4_socket = std::move(*v4);
    if (v6.ok()) v6_socket = std::move(*v6);
    for (bool v6_family : {false, true}) {
      denied[v6_family] =
          absl::IsPermissionDenied((v6_family ? v6 : v4).status());
      if (denied[v6_family]) {
        denied_why[v6_family] =
            std::string((v6_family ? v6 : v4).status().message());
      }
    }
  }
  {
    // Names resolving meanwhile (OnResolved) see the probers only once both
    // exist, with the addresses known so far.
    absl::MutexLock lock(&session->mu_);
    if (any_icmp) {
      session->icmp_ = std::make_unique<IcmpProber>(
          clock, *session->store_, std::move(v4_socket), std::move(v6_socket));
      for (bool v6_family : {false, true}) {
        if (denied[v6_family]) session->icmp_->SetNoPermission(v6_family);
      }
      for (size_t i = 0; i < targets.size(); ++i) {
        if (!targets[i].icmp_enabled) continue;
        // A name not resolved yet reads no_permission only when neither
        // family may be measured.
        const std::optional<IpAddress>& address = session->resolved_[i];
        const bool target_denied =
            address ? denied[address->is_v6()] : denied[0] && denied[1];
        const std::string& why = denied_why[address && address->is_v6()];
        session->store_->SetNoPermission(
            static_cast<int>(i), ProbeKind::kIcmp,
            target_denied ? std::optional<std::string>(why) : std::nullopt);
        if (target_denied && session->icmp_no_permission_.empty()) {
          session->icmp_no_permission_ = why;
        }
        IcmpTarget icmp;
        icmp.target_index = static_cast<int>(i);
        icmp.address = address;
        icmp.payload_bytes = targets[i].icmp_payload_bytes;
        icmp.interval_ns = absl::ToInt64Nanoseconds(targets[i].interval);
        icmp.timeout_ns = absl::ToInt64Nanoseconds(targets[i].timeout);
        session->icmp_->AddTarget(icmp);
        if (kept[i] && previous->icmp_ &&
            previous->targets_[*kept[i]].icmp_enabled) {
          session->icmp_->CarryCounters(static_cast<int>(i),
                                        previous->icmp_->counters(*kept[i]));
        }
      }
    }
    session->grpc_ = std::make_unique<GrpcProber>(clock, *session->store_);
    for (size_t i = 0; i < targets.size(); ++i) {
      const TargetSpec& target = targets[i];
      if (!target.grpc_enabled) continue;
      GrpcTarget grpc;
      grpc.target_index = static_cast<int>(i);
      grpc.name = target.name;
      grpc.interval_ns = absl::ToInt64Nanoseconds(target.interval);
      grpc.timeout_ns = absl::ToInt64Nanoseconds(target.timeout);
      grpc.payload_bytes = target.grpc_payload_bytes;
      session->grpc_->AddTarget(
          grpc,
          session->MakeGrpcClient(static_cast<int>(i), session->resolved_[i]));
      if (kept[i] && previous->grpc_) {
        session->grpc_->CarryCounters(static_cast<int>(i),
                                      previous->grpc_->counters(*kept[i]));
      }
    }
    session->probers_ready_ = true;
    // Handed over or not, the previous session's channels are its own now.
    session->kept_channels_.clear();
    session->kept_uris_.clear();
  }
  if (session->icmp_) session->icmp_->Start();
  session->grpc_->Start();
  const int kept_count = static_cast<int>(
      std::count_if(kept.begin(), kept.end(),
                    [](const std::optional<int>& j) { return j.has_value(); }));
  if (previous != nullptr) {
    log->info("probing {} targets ({} kept its probing, {} new or changed)",
              targets.size(), kept_count,
              static_cast<int>(targets.size()) - kept_count);
  } else {
    log->info("probing {} targets", targets.size());
  }
  return session;
}

std::unique_ptr<EchoClient> ProbingSession::MakeGrpcClient(
    int i, const std::optional<IpAddress>& address) {
  const TargetSpec& target = targets_[i];
  std::string uri = address ? GrpcTargetForAddress(*address, target.grpc_port)
                            : GrpcTargetFor(target.host, target.grpc_port);
  std::shared_ptr<grpc::Channel> channel;
  if (i < static_cast<int>(kept_channels_.size()) &&
      kept_channels_[i] != nullptr && kept_uris_[i] == uri) {
    channel = std::move(kept_channels_[i]);
  } else {
    // A name stays the authority (TLS checks the certificate against it).
    std::string authority =
        address && !IpAddress::Parse(target.host)
            ? absl::StrCat(target.host, ":", target.grpc_port)
            : "";
    channel = MakeProbeChannel(uri, target.interval, target.timeout,
                               probe_credentials_, authority);
  }
  channels_[i] = channel;
  channel_uris_[i] = uri;
  if (target.grpc_mode == GrpcProbeMode::kStream) {
    return MakeStreamEchoClient(channel, clock_);
  }
  return MakeUnaryEchoClient(channel);
}

ProbingSession::~ProbingSession() { Stop(); }

void ProbingSession::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // First: resolution results stop reaching the probers (a Reresolve in
  // progress may hold the pool a moment longer), and a hung resolver does
  // not hold up the stop.
  std::shared_ptr<ResolverPool> resolver;
  {
    absl::MutexLock lock(&mu_);
    resolver = std::move(resolver_);
  }
  resolver.reset();
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
    counters.grpc_connect_replies = grpc.connect_replies;
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
  for (size_t i = 0; i < targets_.size(); ++i) {
    const TargetSpec& target = targets_[i];
    if (IpAddress::Parse(target.host)) continue;  // literal: nothing to do
    std::shared_ptr<ResolverPool> resolver;
    {
      absl::MutexLock lock(&mu_);
      // A resolver that has not answered the last time gets no more work.
      if (resolver_ == nullptr || resolving_[i]) continue;
      resolving_[i] = true;
      resolver = resolver_;
    }
    // Outside mu_: the pool calls OnResolved (which takes mu_) under its own
    // lock.
    resolver->Submit(target.host, target.family,
                     [this, i](const absl::StatusOr<IpAddress>& address) {
                       OnResolved(static_cast<int>(i), address);
                     });
  }
}

void ProbingSession::OnResolved(int i,
                                const absl::StatusOr<IpAddress>& address) {
  auto log = Logger("server");
  const TargetSpec& target = targets_[i];
  absl::MutexLock lock(&mu_);
  resolving_[i] = false;
  if (!address.ok()) {
    // Not fatal: until it resolves, probes fail ("address not resolved").
    log->warn("target {}: {}{}", target.name, address.status().message(),
              addresses_[i].empty() ? "" : " (keeping the previous address)");
    return;
  }
  std::string text = address->ToString();
  if (addresses_[i] == text) return;
  if (addresses_[i].empty()) {
    log->info("target {}: {} resolves to {}", target.name, target.host, text);
  } else {
    log->info("target {}: {} now resolves to {}", target.name, target.host,
              text);
  }
  addresses_[i] = text;
  resolved_[i] = *address;
  if (!probers_ready_) return;  // Start reads resolved_
  if (icmp_ && target.icmp_enabled) icmp_->UpdateAddress(i, *address);
  if (grpc_ && target.grpc_enabled) {
    grpc_->ReplaceClient(i, MakeGrpcClient(i, *address));
  }
}

}  // namespace latency
