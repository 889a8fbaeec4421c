#include "server/api/prometheus.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace latency {
namespace {

// Upper bounds in seconds, from loopback (~10 us) to a dead path (10 s).
constexpr double kBucketSeconds[] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025,  0.005,    0.01,    0.025,  0.05,    0.1,    0.25,
    0.5,     1,        2.5,     5,      10};

constexpr SampleResult kResults[] = {
    SampleResult::kOk,          SampleResult::kTimeout,
    SampleResult::kUnreachable, SampleResult::kTtlExceeded,
    SampleResult::kSendFailed,  SampleResult::kError};

constexpr ProbeStatus kStatuses[] = {
    ProbeStatus::kUnknown, ProbeStatus::kOk,    ProbeStatus::kDegraded,
    ProbeStatus::kDown,    ProbeStatus::kStale, ProbeStatus::kNoPermission};

std::string Number(double value) { return absl::StrFormat("%.9g", value); }

class Writer {
 public:
  void Family(absl::string_view name, absl::string_view type,
              absl::string_view help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                    type, "\n");
  }
  void Line(absl::string_view name, absl::string_view labels, double value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", Number(value), "\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
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

std::string RenderPrometheus(
    const ResultStore& store, const ProberGauges& gauges,
    const std::function<TargetCounters(int)>& counters_of) {
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
           absl::StrCat("target=\"", EscapeLabelValue(store.targets()[i].name),
                        "\",kind=\"", ProbeKindName(kind), "\""),
           std::move(view)});
    }
  }

  Writer w;
  w.Family("latency_rtt_seconds", "histogram",
           "Round-trip time of successful probes since start.");
  for (const Row& row : rows) {
    LogHistogram histogram = store.TotalHistogram(row.target, row.kind);
    double sum = 0;
    histogram.ForEachBucket([&sum](const LogHistogram::Bucket& bucket) {
      sum += static_cast<double>(bucket.representative_ns) * 1e-9 *
             static_cast<double>(bucket.count);
    });
    for (double bound : kBucketSeconds) {
      w.Line("latency_rtt_seconds_bucket",
             absl::StrCat(row.labels, ",le=\"", Number(bound), "\""),
             static_cast<double>(
                 histogram.CountAtOrBelow(static_cast<int64_t>(bound * 1e9))));
    }
    w.Line("latency_rtt_seconds_bucket",
           absl::StrCat(row.labels, ",le=\"+Inf\""),
           static_cast<double>(histogram.count()));
    w.Line("latency_rtt_seconds_sum", row.labels, sum);
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

  std::vector<TargetCounters> counters;
  for (size_t i = 0; i < store.targets().size(); ++i) {
    counters.push_back(counters_of(static_cast<int>(i)));
  }
  auto target_label = [&store](size_t i) {
    return absl::StrCat("target=\"", EscapeLabelValue(store.targets()[i].name),
                        "\"");
  };
  w.Family("latency_late_replies_total", "counter",
           "Replies that arrived after their probe timed out.");
  for (size_t i = 0; i < counters.size(); ++i) {
    w.Line("latency_late_replies_total",
           absl::StrCat(target_label(i), ",kind=\"icmp\""),
           static_cast<double>(counters[i].icmp_late_replies));
    w.Line("latency_late_replies_total",
           absl::StrCat(target_label(i), ",kind=\"grpc\""),
           static_cast<double>(counters[i].grpc_late_replies));
  }
  w.Family("latency_duplicate_replies_total", "counter",
           "Second and later ICMP replies to one probe.");
  for (size_t i = 0; i < counters.size(); ++i) {
    w.Line("latency_duplicate_replies_total", target_label(i),
           static_cast<double>(counters[i].icmp_duplicate_replies));
  }
  w.Family("latency_mismatched_replies_total", "counter",
           "ICMP replies with our id and sequence but a wrong payload.");
  for (size_t i = 0; i < counters.size(); ++i) {
    w.Line("latency_mismatched_replies_total", target_label(i),
           static_cast<double>(counters[i].icmp_mismatched_replies));
  }
  w.Family("latency_grpc_channel_state_changes_total", "counter",
           "Connectivity state changes of the target's gRPC channel.");
  for (size_t i = 0; i < counters.size(); ++i) {
    w.Line("latency_grpc_channel_state_changes_total", target_label(i),
           static_cast<double>(counters[i].grpc_channel_state_changes));
  }
  w.Family("latency_skipped_probes_total", "counter",
           "Probes not sent because the prober fell an interval behind.");
  for (size_t i = 0; i < counters.size(); ++i) {
    w.Line("latency_skipped_probes_total", target_label(i),
           static_cast<double>(counters[i].skipped_probes));
  }

  w.Family("latency_prober_lag_seconds", "gauge",
           "Largest delay between a probe's schedule and its send since the "
           "previous scrape.");
  w.Line("latency_prober_lag_seconds", "kind=\"icmp\"",
         static_cast<double>(gauges.icmp_max_lag_ns) * 1e-9);
  w.Line("latency_prober_lag_seconds", "kind=\"grpc\"",
         static_cast<double>(gauges.grpc_max_lag_ns) * 1e-9);
  w.Family("latency_icmp_available", "gauge",
           "1 when the server could open an ICMP socket.");
  w.Line("latency_icmp_available", "", gauges.icmp_available ? 1 : 0);
  return w.Take();
}

}  // namespace latency
