#include "server/api/query.h"

#include <algorithm>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/utf8.h"
#include "google/protobuf/util/time_util.h"
#include "server/api/history_query.h"

namespace latency {
namespace {

// A page token is this prefix and the offset of the page's first target,
// base64url-encoded: opaque to clients, checked on the way back in.
constexpr absl::string_view kPageTokenPrefix = "offset:";

// Counts go out as uint32 (JSON numbers); saturate rather than wrap.
uint32_t Count32(uint64_t count) {
  return static_cast<uint32_t>(
      std::min<uint64_t>(count, std::numeric_limits<uint32_t>::max()));
}

constexpr ProbeKind kKinds[] = {ProbeKind::kIcmp, ProbeKind::kGrpc};

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

double Ms(double ns) { return ns / 1e6; }

v1::SampleResult ResultToProto(SampleResult result) {
  switch (result) {
    case SampleResult::kOk:
      return v1::SAMPLE_RESULT_OK;
    case SampleResult::kTimeout:
      return v1::SAMPLE_RESULT_TIMEOUT;
    case SampleResult::kUnreachable:
      return v1::SAMPLE_RESULT_UNREACHABLE;
    case SampleResult::kTtlExceeded:
      return v1::SAMPLE_RESULT_TTL_EXCEEDED;
    case SampleResult::kSendFailed:
      return v1::SAMPLE_RESULT_SEND_FAILED;
    case SampleResult::kError:
      return v1::SAMPLE_RESULT_ERROR;
  }
  return v1::SAMPLE_RESULT_UNSPECIFIED;
}

v1::TimestampSource SourceToProto(TimestampSource source) {
  switch (source) {
    case TimestampSource::kKernel:
      return v1::TIMESTAMP_SOURCE_KERNEL;
    case TimestampSource::kUserspace:
      return v1::TIMESTAMP_SOURCE_USERSPACE;
    case TimestampSource::kMixed:
      return v1::TIMESTAMP_SOURCE_MIXED;
    case TimestampSource::kNone:
      return v1::TIMESTAMP_SOURCE_UNSPECIFIED;
  }
  return v1::TIMESTAMP_SOURCE_UNSPECIFIED;
}

v1::ProbeSummary ProbeSummaryOf(const ProbeView& view) {
  v1::ProbeSummary probe;
  probe.set_kind(ProbeKindToProto(view.kind));
  probe.set_enabled(view.enabled);
  probe.set_status(view.enabled ? ProbeStatusName(view.status) : "disabled");
  if (view.last_ok && view.last_ok->rtt_ns) {
    probe.set_last_rtt_ms(Ms(*view.last_ok->rtt_ns));
    if (view.last_ok->network_rtt_ns) {
      probe.set_last_network_rtt_ms(Ms(*view.last_ok->network_rtt_ns));
    }
  }
  if (view.age_ns) probe.set_age_ms(Ms(*view.age_ns));
  probe.set_consecutive_failures(Count32(view.consecutive_failures));
  if (view.status == ProbeStatus::kNoPermission) {
    probe.set_last_error(ToValidUtf8(view.no_permission));
  } else if (view.last && view.last->result != SampleResult::kOk) {
    probe.set_last_error(ToValidUtf8(view.last->error.empty()
                                         ? SampleResultName(view.last->result)
                                         : view.last->error));
  }
  return probe;
}

}  // namespace

v1::ProbeKind ProbeKindToProto(ProbeKind kind) {
  return kind == ProbeKind::kIcmp ? v1::PROBE_KIND_ICMP : v1::PROBE_KIND_GRPC;
}

QueryHandler::QueryHandler(std::function<StoreView()> current)
    : current_(std::move(current)) {}

v1::TargetSummary QueryHandler::Summary(const StoreView& view, int target,
                                        ProbeStatus* status) {
  const ResultStore& store = *view.store;
  const TargetSpec& spec = store.targets()[target];
  v1::TargetSummary summary;
  summary.set_name(spec.name);
  summary.set_host(spec.host);
  summary.set_address(view.address_of(target));
  summary.set_grpc_port(spec.grpc_port);
  summary.mutable_labels()->insert(spec.labels.begin(), spec.labels.end());
  ProbeView probes[] = {store.Probe(target, kKinds[0]),
                        store.Probe(target, kKinds[1])};
  ProbeStatus worst = ResultStore::WorstEnabled(probes);
  summary.set_status(ProbeStatusName(worst));
  for (const ProbeView& probe : probes) {
    *summary.add_probes() = ProbeSummaryOf(probe);
  }
  if (status != nullptr) *status = worst;
  return summary;
}

std::string HistoryStateText(const HistoryHealth& health) {
  switch (health.state) {
    case HistoryHealth::State::kOff:
      return "off";
    case HistoryHealth::State::kOk:
      return "ok";
    case HistoryHealth::State::kDegraded:
      return "degraded: " + health.why;
  }
  return "off";
}

absl::StatusOr<v1::GetHistoryResponse> QueryHandler::GetHistory(
    const v1::GetHistoryRequest& request) const {
  StoreView view = current_();
  const ResultStore& store = *view.store;
  if (request.target().empty()) {
    return absl::InvalidArgumentError("target: required");
  }
  std::optional<int> found = store.FindTarget(request.target());
  if (!found) {
    return absl::NotFoundError(
        absl::StrCat("unknown target '", ToValidUtf8(request.target()), "'"));
  }
  const TargetSpec& spec = store.targets()[*found];
  ProbeKind kind = spec.icmp_enabled ? ProbeKind::kIcmp : ProbeKind::kGrpc;
  switch (request.kind()) {
    case v1::PROBE_KIND_UNSPECIFIED:
      break;
    case v1::PROBE_KIND_ICMP:
      kind = ProbeKind::kIcmp;
      break;
    case v1::PROBE_KIND_GRPC:
      kind = ProbeKind::kGrpc;
      break;
    default:
      return absl::InvalidArgumentError("kind: unknown probe kind");
  }
  if (!(kind == ProbeKind::kIcmp ? spec.icmp_enabled : spec.grpc_enabled)) {
    return absl::NotFoundError(absl::StrCat("target '", spec.name, "' has no ",
                                            ProbeKindName(kind), " probe"));
  }
  if (view.history_health.state == HistoryHealth::State::kOff) {
    return absl::FailedPreconditionError(
        "history is off on this server (--history_db=)");
  }
  if (view.history == nullptr) {
    return absl::UnavailableError("history degraded: " +
                                  view.history_health.why);
  }
  const absl::Time now = store.wall_now();
  const absl::Time end = request.has_end()
                             ? absl::FromUnixSeconds(request.end().seconds()) +
                                   absl::Nanoseconds(request.end().nanos())
                             : now;
  const absl::Time start =
      request.has_start() ? absl::FromUnixSeconds(request.start().seconds()) +
                                absl::Nanoseconds(request.start().nanos())
                          : end - absl::Hours(1);
  const absl::Duration step =
      request.has_step() ? absl::Seconds(request.step().seconds()) +
                               absl::Nanoseconds(request.step().nanos())
                         : absl::ZeroDuration();
  absl::StatusOr<HistoryGrid> grid =
      SnapHistoryGrid(start, end, step, now, view.history_retention);
  if (!grid.ok()) return grid.status();
  absl::StatusOr<v1::GetHistoryResponse> response =
      ReadHistory(*view.history, spec.name, kind, *grid);
  if (!response.ok()) {
    return absl::UnavailableError(
        absl::StrCat("history: ", response.status().message()));
  }
  return response;
}

absl::StatusOr<v1::GetLatencyResponse> QueryHandler::GetLatency(
    const v1::GetLatencyRequest& request) const {
  StoreView view = current_();
  const ResultStore& store = *view.store;
  int target = 0;
  if (!request.target().empty()) {
    std::optional<int> found = store.FindTarget(request.target());
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("unknown target '", ToValidUtf8(request.target()), "'"));
    }
    target = *found;
  }
  // One read of every probe: the overall status, the counts and the list
  // agree.
  const size_t count = store.targets().size();
  ProbeStatus overall;
  std::vector<ProbeStatus> statuses;
  v1::ListTargetsResponse all =
      ListTargets(view, 0, count, &overall, &statuses);
  v1::GetLatencyResponse response;
  for (const v1::TargetSummary& summary : all.targets()) {
    ++(*response.mutable_targets_by_status())[summary.status()];
  }
  response.set_status(ProbeStatusName(overall));
  response.set_target_count(Count32(count));
  response.set_source(view.source);
  response.set_history(HistoryStateText(view.history_health));
  // No targets (discovery found none): the counts say so, nothing else.
  if (count == 0) return response;
  const v1::TargetSummary& summary = all.targets(target);
  response.set_target(summary.name());
  for (const v1::ProbeSummary& probe : summary.probes()) {
    if (probe.kind() == v1::PROBE_KIND_ICMP) {
      response.set_icmp_status(probe.status());
      if (probe.has_last_rtt_ms()) response.set_latency_ms(probe.last_rtt_ms());
      if (probe.has_age_ms()) response.set_age_ms(probe.age_ms());
    } else {
      response.set_grpc_status(probe.status());
      if (probe.has_last_rtt_ms())
        response.set_grpc_latency_ms(probe.last_rtt_ms());
      if (probe.has_last_network_rtt_ms()) {
        response.set_grpc_network_latency_ms(probe.last_network_rtt_ms());
      }
    }
  }
  const size_t limit =
      request.max_targets() == 0
          ? kDefaultMaxTargets
          : std::min<size_t>(request.max_targets(), kDefaultPageSize);
  if (count <= limit) {
    *response.mutable_targets() = std::move(*all.mutable_targets());
    return response;
  }
  // Worst first (then configuration order): a dashboard polling a large
  // fleet sees what is wrong.
  std::vector<size_t> order(count);
  for (size_t i = 0; i < count; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return Severity(statuses[a]) > Severity(statuses[b]);
  });
  order.resize(limit);
  for (size_t i : order) {
    *response.add_targets() =
        std::move(*all.mutable_targets(static_cast<int>(i)));
  }
  return response;
}

absl::StatusOr<v1::ListTargetsResponse> QueryHandler::ListTargets(
    const v1::ListTargetsRequest& request) const {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size: must not be negative, got ", request.page_size()));
  }
  size_t begin = 0;
  if (!request.page_token().empty()) {
    std::string decoded;
    absl::string_view offset;
    if (!absl::WebSafeBase64Unescape(request.page_token(), &decoded) ||
        !absl::StartsWith(offset = decoded, kPageTokenPrefix) ||
        !absl::SimpleAtoi(offset.substr(kPageTokenPrefix.size()), &begin)) {
      return absl::InvalidArgumentError(
          "page_token: not a token this server issued (use next_page_token)");
    }
  }
  StoreView view = current_();
  const size_t count = view.store->targets().size();
  const size_t page_size =
      request.page_size() == 0
          ? kDefaultPageSize
          : std::min<size_t>(request.page_size(), kDefaultPageSize);
  begin = std::min(begin, count);
  const size_t end = std::min(count, begin + page_size);
  v1::ListTargetsResponse response = ListTargets(view, begin, end);
  response.set_total_size(Count32(count));
  response.set_source(view.source);
  if (end < count) {
    response.set_next_page_token(
        absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, end)));
  }
  return response;
}

v1::ListTargetsResponse QueryHandler::ListTargets(
    const StoreView& view, size_t begin, size_t end, ProbeStatus* overall,
    std::vector<ProbeStatus>* statuses) {
  v1::ListTargetsResponse response;
  std::optional<ProbeStatus> worst;
  for (size_t i = begin; i < end; ++i) {
    ProbeStatus status;
    *response.add_targets() = Summary(view, static_cast<int>(i), &status);
    worst = worst ? Worst(*worst, status) : status;
    if (statuses != nullptr) statuses->push_back(status);
  }
  if (overall != nullptr) *overall = worst.value_or(ProbeStatus::kUnknown);
  return response;
}

absl::StatusOr<v1::GetTargetStatsResponse> QueryHandler::GetTargetStats(
    const v1::GetTargetStatsRequest& request) const {
  if (request.target().empty()) {
    return absl::InvalidArgumentError("target: required");
  }
  StoreView current = current_();
  const ResultStore& store = *current.store;
  std::optional<int> target = store.FindTarget(request.target());
  if (!target) {
    return absl::NotFoundError(
        absl::StrCat("unknown target '", ToValidUtf8(request.target()), "'"));
  }
  std::string window_text = request.window().empty() ? "1m" : request.window();
  absl::StatusOr<absl::Duration> window = ParseWindow(window_text);
  if (!window.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("window: ", ToValidUtf8(window.status().message())));
  }
  v1::GetTargetStatsResponse response;
  *response.mutable_target() = Summary(current, *target);
  response.set_window(window_text);
  response.set_source(current.source);
  for (ProbeKind kind : kKinds) {
    ProbeView view = store.Probe(*target, kind);
    if (!view.enabled) continue;
    WindowSnapshot s = store.Snapshot(*target, kind, *window);
    v1::ProbeStats* stats = response.add_probes();
    stats->set_kind(ProbeKindToProto(kind));
    stats->set_status(ProbeStatusName(view.status));
    stats->set_sent(Count32(s.sent));
    stats->set_received(Count32(s.received));
    stats->set_lost(Count32(s.lost));
    if (s.loss_percent) stats->set_loss_percent(*s.loss_percent);
    if (s.last_rtt_ns) stats->set_last_ms(Ms(*s.last_rtt_ns));
    if (s.min_ns) stats->set_min_ms(Ms(*s.min_ns));
    if (s.mean_ns) stats->set_mean_ms(Ms(*s.mean_ns));
    if (s.max_ns) stats->set_max_ms(Ms(*s.max_ns));
    if (s.stddev_ns) stats->set_stddev_ms(Ms(*s.stddev_ns));
    if (s.jitter_ns) stats->set_jitter_ms(Ms(*s.jitter_ns));
    if (s.p50_ns) stats->set_percentiles_exact(s.percentiles_exact);
    if (s.p50_ns) stats->set_p50_ms(Ms(*s.p50_ns));
    if (s.p90_ns) stats->set_p90_ms(Ms(*s.p90_ns));
    if (s.p99_ns) stats->set_p99_ms(Ms(*s.p99_ns));
    if (s.p999_ns) stats->set_p999_ms(Ms(*s.p999_ns));
    if (s.network_p50_ns) stats->set_network_p50_ms(Ms(*s.network_p50_ns));
    for (const auto& [cause, count] : s.failures) {
      (*stats->mutable_failures())[cause] = Count32(count);
    }
    if (view.age_ns) stats->set_age_ms(Ms(*view.age_ns));
    if (view.last)
      stats->set_timestamp_source(SourceToProto(view.last->timestamp_source));
  }
  return response;
}

absl::Status QueryHandler::ValidateWatch(
    const v1::WatchRequest& request) const {
  StoreView view = current_();
  if (!request.target().empty() && !view.store->FindTarget(request.target())) {
    return absl::NotFoundError(
        absl::StrCat("unknown target '", ToValidUtf8(request.target()), "'"));
  }
  if (!v1::ProbeKind_IsValid(request.kind())) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: unknown value ", request.kind()));
  }
  return absl::OkStatus();
}

bool QueryHandler::WatchMatches(const ResultStore& store,
                                const v1::WatchRequest& request,
                                const Sample& sample) {
  if (request.kind() != v1::PROBE_KIND_UNSPECIFIED &&
      request.kind() != ProbeKindToProto(sample.kind)) {
    return false;
  }
  return request.target().empty() ||
         store.targets()[sample.target_index].name == request.target();
}

v1::Sample QueryHandler::SampleToProto(const ResultStore& store,
                                       const Sample& sample) {
  v1::Sample out;
  out.set_target(store.targets()[sample.target_index].name);
  out.set_kind(ProbeKindToProto(sample.kind));
  out.set_sequence(sample.sequence);
  *out.mutable_scheduled_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(sample.scheduled_wall));
  out.set_result(ResultToProto(sample.result));
  if (sample.rtt_ns) out.set_rtt_ms(Ms(*sample.rtt_ns));
  if (std::optional<int64_t> network = sample.network_rtt_ns()) {
    out.set_network_rtt_ms(Ms(*network));
    out.set_network_rtt_source(sample.wire_network_rtt_ns
                                   ? v1::NETWORK_RTT_SOURCE_WIRE
                                   : v1::NETWORK_RTT_SOURCE_HANDLER);
  }
  if (sample.agent_time_ns) out.set_agent_time_ms(Ms(*sample.agent_time_ns));
  out.set_send_lag_ms(Ms(sample.sent_ns - sample.scheduled_ns));
  out.set_timestamp_source(SourceToProto(sample.timestamp_source));
  out.set_error(ToValidUtf8(sample.error));
  return out;
}

}  // namespace latency
