#include "server/stats/status.h"

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

ProbeStatus ComputeStatus(const SeriesStats& stats, int64_t now_ns,
                          absl::Duration interval,
                          const StatusThresholds& thresholds) {
  const bool check_stale =
      thresholds.stale_after_intervals > 0 && interval > absl::ZeroDuration();
  auto older_than_stale_limit = [&](int64_t since_ns) {
    return check_stale && absl::Nanoseconds(now_ns - since_ns) >
                              interval * thresholds.stale_after_intervals;
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
  const std::optional<double> loss =
      stats.Counts(absl::Minutes(1), now_ns).loss_percent();
  if (loss && *loss > thresholds.degraded_loss_percent) {
    return ProbeStatus::kDegraded;
  }
  return ProbeStatus::kOk;
}

}  // namespace latency
