#ifndef LATENCY_SERVER_API_PROMETHEUS_H_
#define LATENCY_SERVER_API_PROMETHEUS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/store/result_store.h"

namespace latency {

// Prober-level facts the exposition shows besides the store's statistics.
struct ProberGauges {
  // Largest send lag (actual - scheduled) of about the last minute, ns.
  int64_t icmp_max_lag_ns = 0;
  int64_t grpc_max_lag_ns = 0;
  bool icmp_available = false;
};

// Per-target counters kept by the probers, not by the store.
struct TargetCounters {
  uint64_t icmp_late_replies = 0;
  uint64_t icmp_duplicate_replies = 0;
  uint64_t icmp_mismatched_replies = 0;
  uint64_t grpc_late_replies = 0;
  uint64_t grpc_channel_state_changes = 0;
  uint64_t skipped_probes = 0;
  // gRPC replies to probes sent before the channel was READY: not RTTs.
  uint64_t grpc_connect_replies = 0;
};

enum class ExpositionFormat {
  kPrometheusText,  // text/plain; version=0.0.4
  // application/openmetrics-text; version=1.0.0: the same samples, counter
  // families named without "_total" in HELP/TYPE, and a final "# EOF".
  kOpenMetrics,
};

// Renders the store as Prometheus text exposition format 0.0.4 or
// OpenMetrics 1.0:
//   latency_rtt_seconds            histogram {target, kind}, buckets 10 us..10
//   s latency_probes_total           counter {target, kind, result}
//   latency_last_rtt_seconds       gauge {target, kind} (absent without data)
//   latency_network_rtt_seconds    gauge {target} latest gRPC RTT - agent time
//   latency_loss_ratio             gauge {target, kind} over the last minute
//   latency_status                 gauge {target, kind, status}: 1 for the
//                                  current status, 0 for the others
//   latency_sample_age_seconds     gauge {target, kind}
//   latency_consecutive_failures   gauge {target, kind}
//   latency_late_replies_total, latency_duplicate_replies_total,
//   latency_grpc_channel_state_changes_total counters {target, ...}
//   latency_prober_lag_seconds     gauge {kind}
//   latency_icmp_available         gauge
// Every series also carries `source` (where the server measures from; left
// out when empty) and each target's own labels from the configuration.
std::string RenderPrometheus(
    const ResultStore& store, const ProberGauges& gauges,
    const std::function<TargetCounters(int)>& counters_of,
    ExpositionFormat format = ExpositionFormat::kPrometheusText,
    const std::string& source = "");
// The same text, handed to `sink` in pieces of about 64 KB as it is
// rendered, so that a large exposition (29 MB at 11k targets) is never
// held twice: the HTTP gateway streams it into the response.
void RenderPrometheusTo(const ResultStore& store, const ProberGauges& gauges,
                        const std::function<TargetCounters(int)>& counters_of,
                        ExpositionFormat format, const std::string& source,
                        const std::function<void(absl::string_view)>& sink);

// Label value escaping per the exposition format (\\, \", \n).
std::string EscapeLabelValue(const std::string& value);

}  // namespace latency

#endif  // LATENCY_SERVER_API_PROMETHEUS_H_
