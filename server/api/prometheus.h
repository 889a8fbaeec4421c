#ifndef LATENCY_SERVER_API_PROMETHEUS_H_
#define LATENCY_SERVER_API_PROMETHEUS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

// The same text in parts, for a large exposition (hundreds of MB at 100k
// targets) that must never be held whole: the HTTP gateway asks for each
// part once the one before is on the wire. Construction copies what the
// lines need of every probe (totals, last samples, status: about 150 bytes a
// probe; the histograms are read as their family is rendered), so the parts
// describe one moment however slowly they are asked for. `store` must
// outlive the renderer.
class ExpositionRenderer {
 public:
  ExpositionRenderer(const ResultStore& store, const ProberGauges& gauges,
                     const std::function<TargetCounters(int)>& counters_of,
                     ExpositionFormat format, const std::string& source);

  // Appends the next lines to `out`, stopping at the first target past
  // `budget` bytes; false once the text is complete.
  bool Next(std::string& out, size_t budget);

 private:
  // One enabled probe: what its lines show.
  struct Row {
    int target;
    ProbeKind kind;
    ProbeStatus status;
    std::array<uint64_t, kNumSampleResults> results;
    std::optional<int64_t> last_rtt_ns;
    std::optional<int64_t> network_rtt_ns;
    std::optional<int64_t> age_ns;
    std::optional<double> loss_ratio;
    uint64_t consecutive_failures;
  };
  std::string TargetLabels(int target) const;
  std::string RowLabels(const Row& row) const;
  // How many steps family `family_` has (rows, targets, or one).
  size_t Steps() const;
  void Header(std::string& out) const;
  void Step(size_t index, std::string& out) const;

  const ResultStore& store_;
  const ProberGauges gauges_;
  const bool openmetrics_;
  const std::string source_label_;  // source="..", or empty
  std::vector<Row> rows_;           // in target order, ICMP before gRPC
  std::vector<TargetCounters> counters_;
  int family_ = 0;  // where the next part starts
  size_t step_ = 0;
  bool header_written_ = false;
};

// Label value escaping per the exposition format (\\, \", \n).
std::string EscapeLabelValue(const std::string& value);

}  // namespace latency

#endif  // LATENCY_SERVER_API_PROMETHEUS_H_
