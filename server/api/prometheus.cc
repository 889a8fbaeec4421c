#include "server/api/prometheus.h"

#include <cmath>

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

class Writer {
 public:
  // Text goes to `sink` each time about 64 KB have been written; with no
  // sink it all stays in `*out` (no copy: the small, common case).
  Writer(bool openmetrics, std::string* out,
         const std::function<void(absl::string_view)>* sink)
      : openmetrics_(openmetrics), out_(*out), sink_(sink) {}

  void Family(absl::string_view name, absl::string_view type,
              absl::string_view help) {
    // OpenMetrics names a counter family without the _total its samples
    // carry.
    if (openmetrics_ && type == "counter") {
      absl::ConsumeSuffix(&name, "_total");
    }
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                    type, "\n");
    MaybeFlush();
  }
  void Line(absl::string_view name, absl::string_view labels, double value) {
    Line(name, labels, absl::string_view(Number(value)));
  }
  void Line(absl::string_view name, absl::string_view labels,
            absl::string_view value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", value, "\n");
    MaybeFlush();
  }
  void Finish() {
    if (openmetrics_) out_.append("# EOF\n");
    if (sink_ != nullptr) {
      (*sink_)(out_);
      out_.clear();
    }
  }

 private:
  static constexpr size_t kFlushBytes = 64 * 1024;
  void MaybeFlush() {
    if (sink_ == nullptr || out_.size() < kFlushBytes) return;
    (*sink_)(out_);
    out_.clear();
  }

  const bool openmetrics_;
  std::string& out_;
  const std::function<void(absl::string_view)>* sink_;
};

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

namespace {

void Render(const ResultStore& store, const ProberGauges& gauges,
            const std::function<TargetCounters(int)>& counters_of,
            const std::string& source, Writer& w);

}  // namespace

std::string RenderPrometheus(
    const ResultStore& store, const ProberGauges& gauges,
    const std::function<TargetCounters(int)>& counters_of,
    ExpositionFormat format, const std::string& source) {
  std::string text;
  Writer w(format == ExpositionFormat::kOpenMetrics, &text, nullptr);
  Render(store, gauges, counters_of, source, w);
  return text;
}

void RenderPrometheusTo(const ResultStore& store, const ProberGauges& gauges,
                        const std::function<TargetCounters(int)>& counters_of,
                        ExpositionFormat format, const std::string& source,
                        const std::function<void(absl::string_view)>& sink) {
  std::string piece;
  Writer w(format == ExpositionFormat::kOpenMetrics, &piece, &sink);
  Render(store, gauges, counters_of, source, w);
}

namespace {

void Render(const ResultStore& store, const ProberGauges& gauges,
            const std::function<TargetCounters(int)>& counters_of,
            const std::string& source, Writer& w) {
  // source="..", or nothing; then the target's name and configured labels.
  const std::string source_label =
      source.empty()
          ? ""
          : absl::StrCat("source=\"", EscapeLabelValue(source), "\"");
  auto target_label = [&store, &source_label](size_t i) {
    const TargetSpec& spec = store.targets()[i];
    std::string out = source_label;
    absl::StrAppend(&out, out.empty() ? "" : ",", "target=\"",
                    EscapeLabelValue(spec.name), "\"");
    for (const auto& [name, value] : spec.labels) {
      absl::StrAppend(&out, ",", name, "=\"", EscapeLabelValue(value), "\"");
    }
    return out;
  };
  struct Row {
    int target;
    ProbeKind kind;
    std::string labels;  // target="x",kind="icmp"
    ProbeView view;
  };
  std::vector<Row> rows;
  for (size_t i = 0; i < store.targets().size(); ++i) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      ProbeView view = store.Probe(static_cast<int>(i), kind);
      if (!view.enabled) continue;
      rows.push_back(
          {static_cast<int>(i), kind,
           absl::StrCat(target_label(i), ",kind=\"", ProbeKindName(kind), "\""),
           std::move(view)});
    }
  }

  w.Family("latency_rtt_seconds", "histogram",
           "Round-trip time of successful probes since start.");
  for (const Row& row : rows) {
    const ExpositionHistogram histogram =
        store.TotalHistogram(row.target, row.kind);
    for (size_t i = 0; i < ExpositionHistogram::kNumBounds; ++i) {
      w.Line(
          "latency_rtt_seconds_bucket",
          absl::StrCat(row.labels, ",le=\"",
                       Number(ExpositionHistogram::kBoundsNs[i] * 1e-9), "\""),
          static_cast<double>(histogram.CountAtOrBelowBound(i)));
    }
    w.Line("latency_rtt_seconds_bucket",
           absl::StrCat(row.labels, ",le=\"+Inf\""),
           static_cast<double>(histogram.count()));
    w.Line("latency_rtt_seconds_sum", row.labels,
           absl::string_view(ExactSeconds(histogram.sum_ns())));
    w.Line("latency_rtt_seconds_count", row.labels,
           static_cast<double>(histogram.count()));
  }

  w.Family("latency_probes_total", "counter",
           "Completed probes by result (ok, timeout, unreachable, ...).");
  for (const Row& row : rows) {
    for (SampleResult result : kResults) {
      w.Line("latency_probes_total",
             absl::StrCat(row.labels, ",result=\"", SampleResultName(result),
                          "\""),
             static_cast<double>(row.view.totals.count(result)));
    }
  }

  w.Family("latency_last_rtt_seconds", "gauge",
           "Latest successful RTT; absent before the first success.");
  for (const Row& row : rows) {
    if (row.view.last_ok && row.view.last_ok->rtt_ns) {
      w.Line("latency_last_rtt_seconds", row.labels,
             static_cast<double>(*row.view.last_ok->rtt_ns) * 1e-9);
    }
  }

  w.Family("latency_network_rtt_seconds", "gauge",
           "Latest gRPC RTT minus the agent's own handling time.");
  for (const Row& row : rows) {
    if (row.kind == ProbeKind::kGrpc && row.view.last_ok &&
        row.view.last_ok->network_rtt_ns) {
      w.Line("latency_network_rtt_seconds", row.labels,
             static_cast<double>(*row.view.last_ok->network_rtt_ns) * 1e-9);
    }
  }

  w.Family("latency_loss_ratio", "gauge",
           "Lost / sent probes over the last minute; absent when none sent.");
  for (const Row& row : rows) {
    std::optional<double> loss =
        store.Counts(row.target, row.kind, absl::Minutes(1)).loss_percent();
    if (loss) w.Line("latency_loss_ratio", row.labels, *loss / 100);
  }

  w.Family("latency_status", "gauge",
           "1 for the probe's current status, 0 for the others.");
  for (const Row& row : rows) {
    for (ProbeStatus status : kStatuses) {
      w.Line(
          "latency_status",
          absl::StrCat(row.labels, ",status=\"", ProbeStatusName(status), "\""),
          row.view.status == status ? 1 : 0);
    }
  }

  w.Family("latency_sample_age_seconds", "gauge",
           "Time since the latest completed probe.");
  for (const Row& row : rows) {
    if (row.view.age_ns) {
      w.Line("latency_sample_age_seconds", row.labels,
             static_cast<double>(*row.view.age_ns) * 1e-9);
    }
  }

  w.Family("latency_consecutive_failures", "gauge",
           "Failed probes in a row up to now.");
  for (const Row& row : rows) {
    w.Line("latency_consecutive_failures", row.labels,
           static_cast<double>(row.view.consecutive_failures));
  }

  // A kind's counters only for targets that probe by it: an ICMP-only
  // fleet pays no series for gRPC's, and the other way round.
  std::vector<TargetCounters> counters;
  std::vector<bool> icmp_on(store.targets().size());
  std::vector<bool> grpc_on(store.targets().size());
  for (size_t i = 0; i < store.targets().size(); ++i) {
    counters.push_back(counters_of(static_cast<int>(i)));
  }
  for (const Row& row : rows) {
    (row.kind == ProbeKind::kIcmp ? icmp_on : grpc_on)[row.target] = true;
  }
  w.Family("latency_late_replies_total", "counter",
           "Replies that arrived after their probe timed out.");
  for (size_t i = 0; i < counters.size(); ++i) {
    if (icmp_on[i]) {
      w.Line("latency_late_replies_total",
             absl::StrCat(target_label(i), ",kind=\"icmp\""),
             static_cast<double>(counters[i].icmp_late_replies));
    }
    if (grpc_on[i]) {
      w.Line("latency_late_replies_total",
             absl::StrCat(target_label(i), ",kind=\"grpc\""),
             static_cast<double>(counters[i].grpc_late_replies));
    }
  }
  w.Family("latency_duplicate_replies_total", "counter",
           "Second and later ICMP replies to one probe.");
  for (size_t i = 0; i < counters.size(); ++i) {
    if (!icmp_on[i]) continue;
    w.Line("latency_duplicate_replies_total", target_label(i),
           static_cast<double>(counters[i].icmp_duplicate_replies));
  }
  w.Family("latency_mismatched_replies_total", "counter",
           "ICMP replies with our id and sequence but a wrong payload.");
  for (size_t i = 0; i < counters.size(); ++i) {
    if (!icmp_on[i]) continue;
    w.Line("latency_mismatched_replies_total", target_label(i),
           static_cast<double>(counters[i].icmp_mismatched_replies));
  }
  w.Family("latency_grpc_channel_state_changes_total", "counter",
           "Connectivity state changes of the target's gRPC channel.");
  for (size_t i = 0; i < counters.size(); ++i) {
    if (!grpc_on[i]) continue;
    w.Line("latency_grpc_channel_state_changes_total", target_label(i),
           static_cast<double>(counters[i].grpc_channel_state_changes));
  }
  w.Family("latency_skipped_probes_total", "counter",
           "Probes not sent because the prober fell an interval behind.");
  for (size_t i = 0; i < counters.size(); ++i) {
    w.Line("latency_skipped_probes_total", target_label(i),
           static_cast<double>(counters[i].skipped_probes));
  }

  w.Family("latency_grpc_connect_replies_total", "counter",
           "gRPC replies to probes sent before the channel was READY: their "
           "time includes connection set-up, so they are not RTT samples.");
  for (size_t i = 0; i < counters.size(); ++i) {
    if (!grpc_on[i]) continue;
    w.Line("latency_grpc_connect_replies_total", target_label(i),
           static_cast<double>(counters[i].grpc_connect_replies));
  }

  w.Family("latency_prober_lag_seconds", "gauge",
           "Largest delay between a probe's schedule and its send over about "
           "the last minute (50-60 s; every scraper sees the same).");
  const std::string source_prefix =
      source_label.empty() ? "" : absl::StrCat(source_label, ",");
  w.Line("latency_prober_lag_seconds",
         absl::StrCat(source_prefix, "kind=\"icmp\""),
         static_cast<double>(gauges.icmp_max_lag_ns) * 1e-9);
  w.Line("latency_prober_lag_seconds",
         absl::StrCat(source_prefix, "kind=\"grpc\""),
         static_cast<double>(gauges.grpc_max_lag_ns) * 1e-9);
  w.Family("latency_icmp_available", "gauge",
           "1 when the server could open an ICMP socket.");
  w.Line("latency_icmp_available", source_label, gauges.icmp_available ? 1 : 0);
  w.Finish();
}

}  // namespace

}  // namespace latency
