#ifndef LATENCY_SERVER_STATS_STATUS_H_
#define LATENCY_SERVER_STATS_STATUS_H_

#include <cstdint>

#include "absl/time/time.h"
#include "server/stats/windowed_stats.h"

namespace latency {

// ProbeStatus is the health of one probe series, as shown to operators.
// kNoPermission is not computed from samples: the store sets it for ICMP
// series this process may not measure (neither ping_group_range nor
// CAP_NET_RAW), which is neither an outage nor loss.
enum class ProbeStatus {
  kUnknown,
  kOk,
  kDegraded,
  kDown,
  kStale,
  kNoPermission
};

// "unknown", "ok", "degraded", "down", "stale", "no_permission".
const char* ProbeStatusName(ProbeStatus status);

// Severity orders statuses for "worst of" summaries:
//   ok (0) < unknown (1) < no_permission (2) < degraded (3) < stale (4)
//   < down (5).
// unknown is not ok, but it only means "no result yet", so any status backed
// by results outranks it. no_permission is a set-up problem, not a network
// one, so every network status outranks it. stale ranks below down: a probe
// that has stopped completing says less than one whose probes are failing.
int Severity(ProbeStatus status);
// The more severe of a and b.
ProbeStatus Worst(ProbeStatus a, ProbeStatus b);

// When a series' status turns degraded, down or stale.
struct StatusThresholds {
  // 1-minute loss above this percentage (strictly) is degraded; 0 makes any
  // loss degraded, 100 or more never.
  double degraded_loss_percent = 5;
  // This many consecutive failures, or more, is down; <= 0 never.
  int down_after_failures = 3;
  // No completed probe for more than this many intervals is stale; <= 0
  // (or a non-positive interval) never.
  int stale_after_intervals = 3;
};

// ComputeStatus decides a series' status at now_ns; interval is the series'
// probe interval. A pure function of its arguments. The first rule that
// holds wins (each outranks the ones below in Severity too):
//   1. No sample recorded yet: stale once more than stale_after_intervals x
//      interval has passed since the series was created (probes should have
//      completed by then), unknown before that.
//   2. down: consecutive_failures() >= down_after_failures. It stays down
//      while nothing new completes; age tells readers how old that is.
//   3. stale: the latest completed probe is older than stale_after_intervals
//      x interval. A sample completes up to one timeout after it was sent,
//      so the threshold should exceed the timeout; 3 intervals does when the
//      timeout is at most 2 intervals.
//   4. degraded: the 1-minute window's loss_percent > degraded_loss_percent
//      (the window covers 60-70 s, see SeriesStats). After a down spell the
//      failures keep the series degraded until they leave that window.
//   5. ok.
ProbeStatus ComputeStatus(const SeriesStats& stats, int64_t now_ns,
                          absl::Duration interval,
                          const StatusThresholds& thresholds);

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_STATUS_H_
