#include "server/api/prometheus.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace latency {
namespace {

constexpr SampleResult kResults[] = {
    SampleResult::kOk,          SampleResult::kTimeout,
    SampleResult::kUnreachable, SampleResult::kTtlExceeded,
    SampleResult::kSendFailed,  SampleResult::kError};

constexpr ProbeStatus kStatuses[] = {
    ProbeStatus::kUnknown, ProbeStatus::kOk,    ProbeStatus::kDegraded,
    ProbeStatus::kDown,    ProbeStatus::kStale, ProbeStatus::kNoPermission};

// Counts print in full (%.9g would turn 1234567890 into 1.23456789e+09);
// other values with 9 significant digits.
std::string Number(double value) {
  if (value == std::floor(value) && std::abs(value) < 0x1p53) {
    return absl::StrFormat("%.0f", value);
  }
  return absl::StrFormat("%.9g", value);
}

// Nanoseconds as exact decimal seconds ("3.002000008", "0"): a double
// printed with %.9g would round a long-running series' sum.
std::string ExactSeconds(uint64_t ns) {
  std::string out =
      absl::StrFormat("%d.%09d", ns / 1'000'000'000, ns % 1'000'000'000);
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

// The families in the order they are rendered; each is a header and then
// one step per row (probe), per target, or once.
enum Family {
  kRtt,
  kProbes,
  kLastRtt,
  kNetworkRtt,
  kLoss,
  kStatus,
  kAge,
  kFailures,
  kLateReplies,
  kDuplicateReplies,
  kMismatchedReplies,
  kChannelStateChanges,
  kSkippedProbes,
  kConnectReplies,
  kProberLag,
  kIcmpAvailable,
  kEof,  // OpenMetrics' "# EOF"
  kDone,
};

struct FamilyInfo {
  const char* name;
  const char* type;
  const char* help;
};

constexpr FamilyInfo kFamilies[] = {
    {"latency_rtt_seconds", "histogram",
     "Round-trip time of successful probes since start."},
    {"latency_probes_total", "counter",
     "Completed probes by result (ok, timeout, unreachable, ...)."},
    {"latency_last_rtt_seconds", "gauge",
     "Latest successful RTT; absent before the first success."},
    {"latency_network_rtt_seconds", "gauge",
     "Latest gRPC RTT minus the agent's own handling time."},
    {"latency_loss_ratio", "gauge",
     "Lost / sent probes over the last minute; absent when none sent."},
    {"latency_status", "gauge",
     "1 for the probe's current status, 0 for the others."},
    {"latency_sample_age_seconds", "gauge",
     "Time since the latest completed probe."},
    {"latency_consecutive_failures", "gauge",
     "Failed probes in a row up to now."},
    {"latency_late_replies_total", "counter",
     "Replies that arrived after their probe timed out."},
    {"latency_duplicate_replies_total", "counter",
     "Second and later ICMP replies to one probe."},
    {"latency_mismatched_replies_total", "counter",
     "ICMP replies with our id and sequence but a wrong payload."},
    {"latency_grpc_channel_state_changes_total", "counter",
     "Connectivity state changes of the target's gRPC channel."},
    {"latency_skipped_probes_total", "counter",
     "Probes not sent because the prober fell an interval behind."},
    {"latency_grpc_connect_replies_total", "counter",
     "gRPC replies to probes sent before the channel was READY: their "
     "time includes connection set-up, so they are not RTT samples."},
    {"latency_prober_lag_seconds", "gauge",
     "Largest delay between a probe's schedule and its send over about "
     "the last minute (50-60 s; every scraper sees the same)."},
    {"latency_icmp_available", "gauge",
     "1 when the server could open an ICMP socket."},
};

void Line(std::string& out, absl::string_view name, absl::string_view labels,
          absl::string_view value) {
  absl::StrAppend(&out, name, labels.empty() ? "" : "{", labels,
                  labels.empty() ? "" : "}", " ", value, "\n");
}

void Line(std::string& out, absl::string_view name, absl::string_view labels,
          double value) {
  Line(out, name, labels, absl::string_view(Number(value)));
}

// A gauge in seconds from nanoseconds; absent (no line) without a value.
void SecondsLine(std::string& out, absl::string_view name,
                 absl::string_view labels, std::optional<int64_t> ns) {
  if (ns) Line(out, name, labels, static_cast<double>(*ns) * 1e-9);
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderPrometheus(
    const ResultStore& store, const ProberGauges& gauges,
    const std::function<TargetCounters(int)>& counters_of,
    ExpositionFormat format, const std::string& source) {
  std::string text;
  ExpositionRenderer renderer(store, gauges, counters_of, format, source);
  while (renderer.Next(text, std::numeric_limits<size_t>::max())) {
  }
  return text;
}

ExpositionRenderer::ExpositionRenderer(
    const ResultStore& store, const ProberGauges& gauges,
    const std::function<TargetCounters(int)>& counters_of,
    ExpositionFormat format, const std::string& source)
    : store_(store),
      gauges_(gauges),
      openmetrics_(format == ExpositionFormat::kOpenMetrics),
      source_label_(
          source.empty()
              ? ""
              : absl::StrCat("source=\"", EscapeLabelValue(source), "\"")) {
  const int targets = static_cast<int>(store.targets().size());
  counters_.reserve(static_cast<size_t>(targets));
  for (int i = 0; i < targets; ++i) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      ProbeView view = store.Probe(i, kind);
      if (!view.enabled) continue;
      Row& row = rows_.emplace_back();
      row.target = i;
      row.kind = kind;
      row.status = view.status;
      row.results = view.totals.by_result;
      if (view.last_ok) {
        row.last_rtt_ns = view.last_ok->rtt_ns;
        if (kind == ProbeKind::kGrpc) {
          row.network_rtt_ns = view.last_ok->network_rtt_ns;
        }
      }
      row.age_ns = view.age_ns;
      std::optional<double> loss =
          store.Counts(i, kind, absl::Minutes(1)).loss_percent();
      if (loss) row.loss_ratio = *loss / 100;
      row.consecutive_failures = view.consecutive_failures;
    }
    counters_.push_back(counters_of(i));
  }
}

std::string ExpositionRenderer::TargetLabels(int target) const {
  // source="..", then the target's name and configured labels.
  const TargetSpec& spec = store_.targets()[static_cast<size_t>(target)];
  std::string out = source_label_;
  absl::StrAppend(&out, out.empty() ? "" : ",", "target=\"",
                  EscapeLabelValue(spec.name), "\"");
  for (const auto& [name, value] : spec.labels) {
    absl::StrAppend(&out, ",", name, "=\"", EscapeLabelValue(value), "\"");
  }
  return out;
}

std::string ExpositionRenderer::RowLabels(const Row& row) const {
  return absl::StrCat(TargetLabels(row.target), ",kind=\"",
                      ProbeKindName(row.kind), "\"");
}

size_t ExpositionRenderer::Steps() const {
  switch (family_) {
    case kSkippedProbes:
      return counters_.size();
    case kProberLag:
    case kIcmpAvailable:
      return 1;
    case kEof:
      return openmetrics_ ? 1 : 0;
    default:
      return rows_.size();
  }
}

void ExpositionRenderer::Header(std::string& out) const {
  if (family_ >= kEof) return;
  const FamilyInfo& family = kFamilies[family_];
  absl::string_view name = family.name;
  // OpenMetrics names a counter family without the _total its samples
  // carry.
  if (openmetrics_ && absl::string_view(family.type) == "counter") {
    absl::ConsumeSuffix(&name, "_total");
  }
  absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name,
                  " ", family.type, "\n");
}

void ExpositionRenderer::Step(size_t index, std::string& out) const {
  const Row* row = index < rows_.size() ? &rows_[index] : nullptr;
  const bool icmp = row != nullptr && row->kind == ProbeKind::kIcmp;
  // A kind's counters only for the probes of that kind: an ICMP-only fleet
  // pays no series for gRPC's, and the other way round.
  switch (family_) {
    case kRtt: {
      const std::string labels = RowLabels(*row);
      const ExpositionHistogram histogram =
          store_.TotalHistogram(row->target, row->kind);
      for (size_t i = 0; i < ExpositionHistogram::kNumBounds; ++i) {
        Line(out, "latency_rtt_seconds_bucket",
             absl::StrCat(labels, ",le=\"",
                          Number(ExpositionHistogram::kBoundsNs[i] * 1e-9),
                          "\""),
             static_cast<double>(histogram.CountAtOrBelowBound(i)));
      }
      Line(out, "latency_rtt_seconds_bucket",
           absl::StrCat(labels, ",le=\"+Inf\""),
           static_cast<double>(histogram.count()));
      Line(out, "latency_rtt_seconds_sum", labels,
           absl::string_view(ExactSeconds(histogram.sum_ns())));
      Line(out, "latency_rtt_seconds_count", labels,
           static_cast<double>(histogram.count()));
      return;
    }
    case kProbes: {
      const std::string labels = RowLabels(*row);
      for (SampleResult result : kResults) {
        Line(out, "latency_probes_total",
             absl::StrCat(labels, ",result=\"", SampleResultName(result), "\""),
             static_cast<double>(row->results[static_cast<size_t>(result)]));
      }
      return;
    }
    case kLastRtt:
      SecondsLine(out, "latency_last_rtt_seconds", RowLabels(*row),
                  row->last_rtt_ns);
      return;
    case kNetworkRtt:
      SecondsLine(out, "latency_network_rtt_seconds", RowLabels(*row),
                  row->network_rtt_ns);
      return;
    case kLoss:
      if (row->loss_ratio) {
        Line(out, "latency_loss_ratio", RowLabels(*row), *row->loss_ratio);
      }
      return;
    case kStatus: {
      const std::string labels = RowLabels(*row);
      for (ProbeStatus status : kStatuses) {
        Line(out, "latency_status",
             absl::StrCat(labels, ",status=\"", ProbeStatusName(status), "\""),
             row->status == status ? 1 : 0);
      }
      return;
    }
    case kAge:
      SecondsLine(out, "latency_sample_age_seconds", RowLabels(*row),
                  row->age_ns);
      return;
    case kFailures:
      Line(out, "latency_consecutive_failures", RowLabels(*row),
           static_cast<double>(row->consecutive_failures));
      return;
    case kLateReplies: {
      const TargetCounters& counters = counters_[row->target];
      Line(out, "latency_late_replies_total", RowLabels(*row),
           static_cast<double>(icmp ? counters.icmp_late_replies
                                    : counters.grpc_late_replies));
      return;
    }
    case kDuplicateReplies:
      if (icmp) {
        Line(
            out, "latency_duplicate_replies_total", TargetLabels(row->target),
            static_cast<double>(counters_[row->target].icmp_duplicate_replies));
      }
      return;
    case kMismatchedReplies:
      if (icmp) {
        Line(out, "latency_mismatched_replies_total", TargetLabels(row->target),
             static_cast<double>(
                 counters_[row->target].icmp_mismatched_replies));
      }
      return;
    case kChannelStateChanges:
      if (!icmp) {
        Line(out, "latency_grpc_channel_state_changes_total",
             TargetLabels(row->target),
             static_cast<double>(
                 counters_[row->target].grpc_channel_state_changes));
      }
      return;
    case kSkippedProbes:
      Line(out, "latency_skipped_probes_total",
           TargetLabels(static_cast<int>(index)),
           static_cast<double>(counters_[index].skipped_probes));
      return;
    case kConnectReplies:
      if (!icmp) {
        Line(out, "latency_grpc_connect_replies_total",
             TargetLabels(row->target),
             static_cast<double>(counters_[row->target].grpc_connect_replies));
      }
      return;
    case kProberLag: {
      const std::string prefix =
          source_label_.empty() ? "" : absl::StrCat(source_label_, ",");
      Line(out, "latency_prober_lag_seconds",
           absl::StrCat(prefix, "kind=\"icmp\""),
           static_cast<double>(gauges_.icmp_max_lag_ns) * 1e-9);
      Line(out, "latency_prober_lag_seconds",
           absl::StrCat(prefix, "kind=\"grpc\""),
           static_cast<double>(gauges_.grpc_max_lag_ns) * 1e-9);
      return;
    }
    case kIcmpAvailable:
      Line(out, "latency_icmp_available", source_label_,
           gauges_.icmp_available ? 1 : 0);
      return;
    case kEof:
      out.append("# EOF\n");
      return;
  }
}

bool ExpositionRenderer::Next(std::string& out, size_t budget) {
  const size_t start = out.size();
  while (family_ != kDone && out.size() - start < budget) {
    const size_t steps = Steps();
    if (step_ == 0 && !header_written_) {
      Header(out);
      header_written_ = true;
    }
    while (step_ < steps && out.size() - start < budget) Step(step_++, out);
    if (step_ == steps) {
      ++family_;
      step_ = 0;
      header_written_ = false;
    }
  }
  return family_ != kDone;
}

}  // namespace latency
