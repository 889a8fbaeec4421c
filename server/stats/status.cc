#include "server/stats/status.h"

#include <algorithm>
#include <cstddef>
#include <iterator>

namespace latency {

namespace {

struct StatusInfo {
  const char* name;
  int severity;
};

// Indexed by ProbeStatus.
constexpr StatusInfo kStatusInfo[] = {
    {"unknown", 1}, {"ok", 0},    {"degraded", 3},
    {"down", 5},    {"stale", 4}, {"no_permission", 2},
};
static_assert(std::size(kStatusInfo) ==
              static_cast<size_t>(ProbeStatus::kNoPermission) + 1);

const StatusInfo& InfoFor(ProbeStatus status) {
  const size_t index = static_cast<size_t>(status);
  return kStatusInfo[index < std::size(kStatusInfo) ? index : 0];
}

}  // namespace

const char* ProbeStatusName(ProbeStatus status) { return InfoFor(status).name; }

int Severity(ProbeStatus status) { return InfoFor(status).severity; }

ProbeStatus Worst(ProbeStatus a, ProbeStatus b) {
  return Severity(b) > Severity(a) ? b : a;
}

absl::Duration StaleLimit(const SeriesFacts& facts,
                          const StatusThresholds& thresholds) {
  if (thresholds.stale_after_intervals <= 0 ||
      facts.interval <= absl::ZeroDuration()) {
    return absl::InfiniteDuration();
  }
  return std::max(
      facts.interval * thresholds.stale_after_intervals,
      std::max(facts.timeout, absl::ZeroDuration()) + facts.interval);
}

ProbeStatus ComputeStatus(const SeriesStats& stats, int64_t now_ns,
                          const SeriesFacts& facts,
                          const StatusThresholds& thresholds) {
  const absl::Duration stale_limit = StaleLimit(facts, thresholds);
  auto older_than_stale_limit = [&](int64_t since_ns) {
    return absl::Nanoseconds(now_ns - since_ns) > stale_limit;
  };

  const std::optional<int64_t> last_completed = stats.last_completed_ns();
  if (!last_completed) {
    return older_than_stale_limit(stats.created_ns()) ? ProbeStatus::kStale
                                                      : ProbeStatus::kUnknown;
  }
  if (thresholds.down_after_failures > 0 &&
      stats.consecutive_failures() >=
          static_cast<uint64_t>(thresholds.down_after_failures)) {
    return ProbeStatus::kDown;
  }
  if (older_than_stale_limit(*last_completed)) return ProbeStatus::kStale;
  // Only failures so far, fewer than make it down: nothing has answered
  // yet (e.g. connection set-up), so not ok either.
  if (!stats.last_ok_sample()) return ProbeStatus::kUnknown;
  constexpr absl::Duration kLossWindow = absl::Minutes(1);
  WindowCounts counts = stats.Counts(kLossWindow, now_ns);
  // The set-up failures are in the window while the first success is (the
  // window reaches back at least one minute); only failures can be them.
  if (facts.first_ok_ns &&
      absl::Nanoseconds(now_ns - *facts.first_ok_ns) <= kLossWindow) {
    uint64_t setup = std::min(facts.failures_before_first_ok, counts.lost);
    counts.lost -= setup;
    counts.sent -= setup;
  }
  const std::optional<double> loss = counts.loss_percent();
  if (loss && *loss > thresholds.degraded_loss_percent &&
      counts.sent >=
          static_cast<uint64_t>(std::max(0, thresholds.degraded_min_samples))) {
    return ProbeStatus::kDegraded;
  }
  return ProbeStatus::kOk;
}

}  // namespace latency
