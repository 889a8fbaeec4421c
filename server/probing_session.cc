#include "server/probing_session.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
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
    bool keep_history_minutes, std::unique_ptr<WireTap> wire_tap) {
  std::shared_ptr<ProbingSession> session(
      new ProbingSession(clock, probe_credentials, keep_history_minutes));
  session->wire_tap_ = std::move(wire_tap);
  session->grpc_ = std::make_unique<GrpcProber>(clock, session->router_,
                                                session->wire_tap_.get());
  {
    absl::MutexLock lock(&session->mu_);
    session->resolver_ = std::make_shared<ResolverPool>(kResolverThreads);
  }
  // Targets added before the probers start share one phase spread.
  if (absl::Status status = session->Reload(targets, thresholds);
      !status.ok()) {
    return status;
  }
  {
    absl::MutexLock lock(&session->mu_);
    session->started_ = true;
    if (session->icmp_) session->icmp_->Start();
  }
  session->grpc_->Start();
  return session;
}

absl::Status ProbingSession::Reload(const std::vector<TargetSpec>& targets,
                                    const StatusThresholds& thresholds) {
  std::shared_ptr<const Generation> previous = generation();
  auto next = std::make_shared<Generation>();
  next->store = std::make_shared<ResultStore>(
      clock_, targets, thresholds,
      previous != nullptr ? previous->store.get() : nullptr,
      keep_history_minutes_);
  // A target whose settings are unchanged keeps its id, so its probing
  // carries on; a new or changed one gets a new id.
  std::vector<int> fresh;  // ids that start now
  int kept = 0;
  bool any_icmp = false;
  {
    absl::MutexLock lock(&mu_);
    for (const TargetSpec& target : targets) {
      any_icmp = any_icmp || target.icmp_enabled;
      std::optional<int> j;
      if (previous != nullptr) j = previous->store->FindTarget(target.name);
      int id;
      if (j && previous->store->targets()[*j] == target) {
        id = previous->ids[*j];
        ++kept;
      } else {
        id = next_id_++;
        fresh.push_back(id);
        Unit& unit = units_[id];
        unit.spec = target;
        // Literals are probed at once; names as they resolve.
        if (std::optional<IpAddress> literal = IpAddress::Parse(target.host)) {
          unit.resolved = *literal;
          unit.address = literal->ToString();
        }
      }
      next->index_of_id[id] = static_cast<int>(next->ids.size());
      next->ids.push_back(id);
    }
  }
  // ICMP sockets open when the first target needs them (at start, or the
  // first reload that brings one).
  {
    absl::MutexLock lock(&mu_);
    if (any_icmp && !icmp_opened_) OpenIcmp();
  }
  {
    // From here the new store gets every sample, the removed targets' last
    // ones are dropped.
    absl::MutexLock lock(&generation_mu_);
    generation_ = next;
  }
  std::vector<int> removed;
  if (previous != nullptr) {
    for (int id : previous->ids) {
      if (!next->index_of_id.contains(id)) removed.push_back(id);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    for (int id : removed) {
      if (icmp_) icmp_->RemoveTarget(id);
      grpc_->RemoveTarget(id);
      units_.erase(id);  // a resolution still running finds nothing
    }
    for (int id : fresh) AddToProbers(id);
    // Kept series keep their no_permission mark with the series; set it
    // again anyway, so the new store answers for every target.
    icmp_no_permission_.clear();
    if (icmp_ != nullptr) {
      for (size_t i = 0; i < targets.size(); ++i) {
        if (!targets[i].icmp_enabled) continue;
        const Unit& unit = units_.at(next->ids[i]);
        const bool target_denied = unit.resolved
                                       ? denied_[unit.resolved->is_v6()]
                                       : denied_[0] && denied_[1];
        const std::string& why =
            denied_why_[unit.resolved && unit.resolved->is_v6()];
        next->store->SetNoPermission(
            static_cast<int>(i), ProbeKind::kIcmp,
            target_denied ? std::optional<std::string>(why) : std::nullopt);
        if (target_denied && icmp_no_permission_.empty()) {
          icmp_no_permission_ = why;
        }
      }
    }
    if (started_ && icmp_ != nullptr) icmp_->Start();  // no-op when running
  }
  for (int id : fresh) Resolve(id);
  // Watch streams follow one configuration's store: they end, clients watch
  // again.
  if (previous != nullptr) previous->store->CloseSubscriptions();
  auto log = Logger("server");
  if (previous != nullptr) {
    log->info(
        "probing {} targets ({} kept its probing, {} new or changed, {} "
        "stopped)",
        targets.size(), kept, fresh.size(), removed.size());
  } else {
    log->info("probing {} targets", targets.size());
  }
  return absl::OkStatus();
}

void ProbingSession::OpenIcmp() {
  icmp_opened_ = true;
  auto log = Logger("server");
  absl::StatusOr<std::unique_ptr<IcmpSocket>> v4 =
      OpenIcmpSocket(false, clock_);
  absl::StatusOr<std::unique_ptr<IcmpSocket>> v6 = OpenIcmpSocket(true, clock_);
  if (!v4.ok()) log->error("ICMP disabled for IPv4: {}", v4.status().message());
  if (!v6.ok()) log->warn("ICMP disabled for IPv6: {}", v6.status().message());
  icmp_available_ = v4.ok() || v6.ok();
  // No permission is not an outage: those series read no_permission (with
  // the fix), not down, and send nothing.
  for (bool v6_family : {false, true}) {
    const absl::Status& status = (v6_family ? v6 : v4).status();
    denied_[v6_family] = absl::IsPermissionDenied(status);
    if (denied_[v6_family]) {
      denied_why_[v6_family] = std::string(status.message());
    }
  }
  icmp_ = std::make_unique<IcmpProber>(clock_, router_,
                                       v4.ok() ? std::move(*v4) : nullptr,
                                       v6.ok() ? std::move(*v6) : nullptr);
  for (bool v6_family : {false, true}) {
    if (denied_[v6_family]) icmp_->SetNoPermission(v6_family);
  }
}

void ProbingSession::AddToProbers(int id) {
  const Unit& unit = units_.at(id);
  const TargetSpec& target = unit.spec;
  if (target.icmp_enabled && icmp_ != nullptr) {
    IcmpTarget icmp;
    icmp.target_index = id;
    icmp.address = unit.resolved;
    icmp.payload_bytes = target.icmp_payload_bytes;
    icmp.interval_ns = absl::ToInt64Nanoseconds(target.interval);
    icmp.timeout_ns = absl::ToInt64Nanoseconds(target.timeout);
    icmp_->AddTarget(icmp);
  }
  if (target.grpc_enabled) {
    GrpcTarget grpc;
    grpc.target_index = id;
    grpc.name = target.name;
    grpc.interval_ns = absl::ToInt64Nanoseconds(target.interval);
    grpc.timeout_ns = absl::ToInt64Nanoseconds(target.timeout);
    grpc.payload_bytes = target.grpc_payload_bytes;
    grpc.port = static_cast<uint16_t>(target.grpc_port);
    grpc_->AddTarget(grpc, MakeGrpcClient(target, unit.resolved));
  }
}

std::unique_ptr<EchoClient> ProbingSession::MakeGrpcClient(
    const TargetSpec& target, const std::optional<IpAddress>& address) {
  std::string uri = address ? GrpcTargetForAddress(*address, target.grpc_port)
                            : GrpcTargetFor(target.host, target.grpc_port);
  // A name stays the authority (TLS checks the certificate against it).
  std::string authority = address && !IpAddress::Parse(target.host)
                              ? absl::StrCat(target.host, ":", target.grpc_port)
                              : "";
  auto channel = MakeProbeChannel(uri, target.interval, target.timeout,
                                  probe_credentials_, authority);
  if (target.grpc_mode == GrpcProbeMode::kStream) {
    return MakeStreamEchoClient(channel, clock_);
  }
  return MakeUnaryEchoClient(channel);
}

void ProbingSession::Router::Record(const Sample& sample) {
  std::shared_ptr<const Generation> generation = session_.generation();
  if (generation == nullptr) return;
  auto it = generation->index_of_id.find(sample.target_index);
  if (it == generation->index_of_id.end()) return;  // removed target
  Sample routed = sample;
  routed.target_index = it->second;
  generation->store->Record(routed);
}

ProbingSession::~ProbingSession() { Stop(); }

void ProbingSession::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // First: resolution results stop reaching the probers (a Reresolve in
  // progress may hold the pool a moment longer), and a hung resolver does
  // not hold up the stop.
  std::shared_ptr<ResolverPool> resolver;
  IcmpProber* icmp = nullptr;
  {
    absl::MutexLock lock(&mu_);
    resolver = std::move(resolver_);
    icmp = icmp_.get();
  }
  resolver.reset();
  if (icmp) icmp->Stop();
  if (grpc_) grpc_->Stop();
  if (std::shared_ptr<const Generation> current = generation()) {
    current->store->CloseSubscriptions();
  }
}

std::shared_ptr<const ProbingSession::Generation> ProbingSession::generation()
    const {
  absl::ReaderMutexLock lock(&generation_mu_);
  return generation_;
}

std::shared_ptr<ResultStore> ProbingSession::store() const {
  return generation()->store;
}

std::pair<std::shared_ptr<ResultStore>, std::function<std::string(int)>>
ProbingSession::ReaderView() const {
  std::shared_ptr<const Generation> current = generation();
  return {current->store, [this, current](int target) {
            return target >= 0 && target < static_cast<int>(current->ids.size())
                       ? AddressOfId(current->ids[target])
                       : std::string();
          }};
}

std::string ProbingSession::AddressOf(int target) const {
  std::shared_ptr<const Generation> current = generation();
  if (target < 0 || target >= static_cast<int>(current->ids.size())) return "";
  return AddressOfId(current->ids[target]);
}

std::string ProbingSession::AddressOfId(int id) const {
  absl::MutexLock lock(&mu_);
  auto it = units_.find(id);
  return it == units_.end() ? std::string() : it->second.address;
}

std::string ProbingSession::icmp_no_permission() const {
  absl::MutexLock lock(&mu_);
  return icmp_no_permission_;
}

TargetCounters ProbingSession::CountersOf(int target) const {
  TargetCounters counters;
  std::shared_ptr<const Generation> current = generation();
  if (target < 0 || target >= static_cast<int>(current->ids.size())) {
    return counters;
  }
  const int id = current->ids[target];
  const TargetSpec& spec = current->store->targets()[target];
  IcmpProber* icmp_prober;
  {
    absl::MutexLock lock(&mu_);
    icmp_prober = icmp_.get();
  }
  if (icmp_prober && spec.icmp_enabled) {
    const IcmpTargetCounters& icmp = icmp_prober->counters(id);
    counters.icmp_late_replies = icmp.late_replies;
    counters.icmp_duplicate_replies = icmp.duplicate_replies;
    counters.icmp_mismatched_replies = icmp.mismatched_replies;
    counters.skipped_probes += icmp.skipped_probes;
  }
  if (grpc_ && spec.grpc_enabled) {
    const GrpcTargetCounters& grpc = grpc_->counters(id);
    counters.grpc_late_replies = grpc.late_replies;
    counters.grpc_channel_state_changes = grpc.channel_state_changes;
    counters.grpc_connect_replies = grpc.connect_replies;
    counters.skipped_probes += grpc.skipped_probes;
  }
  return counters;
}

int64_t ProbingSession::MaxLagNs(ProbeKind kind, int64_t now_ns) {
  if (kind == ProbeKind::kIcmp) {
    absl::MutexLock lock(&mu_);
    return icmp_ ? icmp_->MaxLagNs(now_ns) : 0;
  }
  return grpc_ ? grpc_->MaxLagNs(now_ns) : 0;
}

void ProbingSession::LogTransitions() {
  auto log = Logger("server");
  std::shared_ptr<const Generation> current = generation();
  const ResultStore& store = *current->store;
  // Ids of removed targets are never seen again.
  if (last_status_.size() > current->ids.size()) {
    absl::erase_if(last_status_, [&](const auto& entry) {
      return !current->index_of_id.contains(entry.first);
    });
  }
  for (size_t i = 0; i < current->ids.size(); ++i) {
    // A new id starts from unknown, as its new series does; a kept one
    // carries on from what it last logged.
    std::array<ProbeStatus, 2>& last =
        last_status_
            .try_emplace(current->ids[i],
                         std::array<ProbeStatus, 2>{ProbeStatus::kUnknown,
                                                    ProbeStatus::kUnknown})
            .first->second;
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      const int target = static_cast<int>(i);
      if (!store.Enabled(target, kind)) continue;
      ProbeStatus& previous = last[kind == ProbeKind::kGrpc];
      // The status alone first: at 100k targets, four passes a second of
      // full views (sample copies) took a core.
      if (store.Status(target, kind) == previous) continue;
      ProbeView view = store.Probe(target, kind);
      if (view.status == previous) continue;
      std::string cause;
      if (view.last && view.last->result != SampleResult::kOk) {
        cause = " (" + view.last->error + ")";
      }
      auto level = view.status == ProbeStatus::kOk ? spdlog::level::info
                                                   : spdlog::level::warn;
      log->log(level, "target {} {}: {} -> {}{}", store.targets()[i].name,
               ProbeKindName(kind), ProbeStatusName(previous),
               ProbeStatusName(view.status), cause);
      previous = view.status;
    }
  }
}

void ProbingSession::LogReport() {
  auto log = Logger("server");
  std::shared_ptr<ResultStore> store = this->store();
  for (size_t i = 0; i < store->targets().size(); ++i) {
    std::string line = store->targets()[i].name;
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      ProbeView view = store->Probe(static_cast<int>(i), kind);
      if (!view.enabled) continue;
      WindowSnapshot s =
          store->Snapshot(static_cast<int>(i), kind, absl::Minutes(1));
      line += absl::StrFormat(
          " | %s %s p50=%s ms p99=%s ms loss=%s%%", ProbeKindName(kind),
          ProbeStatusName(view.status), Ms(s.p50_ns), Ms(s.p99_ns),
          s.loss_percent ? absl::StrFormat("%.1f", *s.loss_percent) : "-");
    }
    log->info("1m: {}", line);
  }
}

void ProbingSession::Reresolve() {
  for (int id : generation()->ids) Resolve(id);
}

void ProbingSession::Resolve(int id) {
  std::shared_ptr<ResolverPool> resolver;
  std::string host;
  AddressFamily family;
  {
    absl::MutexLock lock(&mu_);
    auto it = units_.find(id);
    if (it == units_.end()) return;  // removed
    Unit& unit = it->second;
    if (IpAddress::Parse(unit.spec.host)) return;  // literal: nothing to do
    // A resolver that has not answered the last time gets no more work.
    if (resolver_ == nullptr || unit.resolving) return;
    unit.resolving = true;
    resolver = resolver_;
    host = unit.spec.host;
    family = unit.spec.family;
  }
  // Outside mu_: the pool calls OnResolved (which takes mu_) under its own
  // lock.
  resolver->Submit(host, family,
                   [this, id](const absl::StatusOr<IpAddress>& address) {
                     OnResolved(id, address);
                   });
}

void ProbingSession::OnResolved(int id,
                                const absl::StatusOr<IpAddress>& address) {
  auto log = Logger("server");
  absl::MutexLock lock(&mu_);
  auto it = units_.find(id);
  if (it == units_.end()) return;  // removed by a reload meanwhile
  Unit& unit = it->second;
  const TargetSpec& target = unit.spec;
  unit.resolving = false;
  if (!address.ok()) {
    // Not fatal: until it resolves, probes fail ("address not resolved").
    log->warn("target {}: {}{}", target.name, address.status().message(),
              unit.address.empty() ? "" : " (keeping the previous address)");
    return;
  }
  std::string text = address->ToString();
  if (unit.address == text) return;
  if (unit.address.empty()) {
    log->info("target {}: {} resolves to {}", target.name, target.host, text);
  } else {
    log->info("target {}: {} now resolves to {}", target.name, target.host,
              text);
  }
  unit.address = text;
  unit.resolved = *address;
  // The probers have this target already (AddToProbers runs under mu_
  // before any resolution is queued).
  if (icmp_ && target.icmp_enabled) icmp_->UpdateAddress(id, *address);
  if (target.grpc_enabled) {
    grpc_->ReplaceClient(id, MakeGrpcClient(target, *address));
  }
}

}  // namespace latency
