#ifndef LATENCY_SERVER_STATS_STATUS_H_
#define LATENCY_SERVER_STATS_STATUS_H_

#include <cstdint>
#include <optional>

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
  // Loss says nothing over fewer completed probes than this in the window:
  // one failure in a handful of samples is not "loss above 5%". 20 is the
  // fewest where one loss alone cannot exceed the default 5%.
  int degraded_min_samples = 20;
  // This many consecutive failures, or more, is down; <= 0 never.
  int down_after_failures = 3;
  // No completed probe for more than this many intervals is stale; <= 0
  // (or a non-positive interval) never.
  int stale_after_intervals = 3;

  bool operator==(const StatusThresholds&) const = default;
};

// What ComputeStatus knows of a series besides its statistics.
struct SeriesFacts {
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(1);
  // Failures completed before the series' first success, and when that
  // success completed (nullopt: none yet). Those failures are the
  // connection being set up (agent and server started together), not loss.
  uint64_t failures_before_first_ok = 0;
  std::optional<int64_t> first_ok_ns;
};

// How long a series may go without a completed probe before it is stale:
// stale_after_intervals x interval, but never less than timeout + interval
// (a probe completes up to one timeout after it is sent, so a shorter limit
// would read stale before down). Infinite when stale is off.
absl::Duration StaleLimit(const SeriesFacts& facts,
                          const StatusThresholds& thresholds);

// ComputeStatus decides a series' status at now_ns. A pure function of its
// arguments. The first rule that holds wins (each outranks the ones below in
// Severity too):
//   1. No sample recorded yet: stale once more than StaleLimit has passed
//      since the series was created (probes should have completed by
//      then), unknown before that.
//   2. down: consecutive_failures() >= down_after_failures. It stays down
//      while nothing new completes; age tells readers how old that is.
//   3. stale: the latest completed probe is older than StaleLimit.
//   3a. unknown: no probe has succeeded yet (failures, but fewer than
//      down_after_failures in a row): nothing has answered yet.
//   4. degraded: the 1-minute window holds at least degraded_min_samples
//      probes, not counting failures before the first success, and their
//      loss_percent > degraded_loss_percent (the window covers 60-70 s,
//      see SeriesStats). After a down spell the failures keep the series
//      degraded until they leave that window.
//   5. ok.
// When `holds_until_ns` is given it is set to a time after now_ns before
// which the status stays the same unless a sample is recorded (the next
// stale deadline, or the next 1-minute window slot leaving it while the
// window holds loss): callers may keep the status that long.
ProbeStatus ComputeStatus(const SeriesStats& stats, int64_t now_ns,
                          const SeriesFacts& facts,
                          const StatusThresholds& thresholds,
                          int64_t* holds_until_ns = nullptr);

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_STATUS_H_
