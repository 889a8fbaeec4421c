#ifndef LATENCY_SERVER_STATS_HISTORY_ROW_H_
#define LATENCY_SERVER_STATS_HISTORY_ROW_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/sample.h"
#include "server/stats/log_histogram.h"
#include "server/stats/status.h"
#include "server/stats/windowed_stats.h"

namespace latency {

// HistoryRow is one probe series over one stored period (a minute, or an
// hour of minutes): everything a range query merges exactly. Rows merge like
// their histograms do: Merge(a, b) equals adding a's and b's samples into one
// row, so a percentile over a day of rows is the day's own percentile (within
// LogHistogram's 0.1%), not an average of per-minute percentiles.
struct HistoryRow {
  // Unix seconds at the period's start (whole minutes or hours).
  int64_t start_s = 0;
  uint64_t sent = 0;  // completed probes, answered or failed
  uint64_t received = 0;
  // Failed probes by SampleResult (index 0, kOk, stays 0).
  std::array<uint64_t, kNumSampleResults> failures{};
  // The worst status (by Severity) the series had when a probe of the
  // period completed; unknown only when it had no other.
  ProbeStatus status = ProbeStatus::kUnknown;
  // RTT aggregates over the received probes (meaningless when received is 0).
  int64_t min_ns = 0;
  int64_t max_ns = 0;
  uint64_t sum_ns = 0;
  // Sum of squared RTTs, for the standard deviation: an exact integer, so
  // merges in any order give equal rows.
  unsigned __int128 sum_squares_ns2 = 0;
  LogHistogram rtt;
  LogHistogram network_rtt;  // gRPC samples that carry the agent's time

  // Adds one completed probe, and the status the series had once it
  // was recorded.
  void Add(const Sample& sample, ProbeStatus status_after);
  // Adds `other` (any period); start_s stays this row's.
  void Merge(const HistoryRow& other);

  uint64_t lost() const { return sent - received; }
  std::optional<double> mean_ns() const;
  std::optional<double> stddev_ns() const;  // population

  // Compact bytes for the history database (varints, the two histograms in
  // LogHistogram's encoding); start_s is the row's key, not encoded. A
  // steady minute of 60 probes takes about 50 bytes.
  std::string Encode() const;
  // InvalidArgument for bytes Encode cannot have produced.
  static absl::StatusOr<HistoryRow> Decode(int64_t start_s,
                                           absl::string_view bytes);

  friend bool operator==(const HistoryRow& a, const HistoryRow& b);
};

// Unix seconds of the period of `length_s` (60 or 3600) holding `when`.
int64_t PeriodStart(absl::Time when, int64_t length_s);

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_HISTORY_ROW_H_
