#include "server/stats/status.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <limits>

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
                          const StatusThresholds& thresholds,
                          int64_t* holds_until_ns) {
  int64_t holds_until = std::numeric_limits<int64_t>::max();
  // A rule that reads "more than `limit` since `since`" turns at since +
  // limit + 1 ns; the status holds until the earliest such turn ahead.
  auto turns_at = [&](int64_t since_ns, absl::Duration limit) {
    if (limit == absl::InfiniteDuration()) return;
    const int64_t at = since_ns + absl::ToInt64Nanoseconds(limit) + 1;
    if (at > now_ns) holds_until = std::min(holds_until, at);
  };
  auto verdict = [&](ProbeStatus status) {
    if (holds_until_ns != nullptr) *holds_until_ns = holds_until;
    return status;
  };
  const absl::Duration stale_limit = StaleLimit(facts, thresholds);
  auto older_than_stale_limit = [&](int64_t since_ns) {
    turns_at(since_ns, stale_limit);
    return absl::Nanoseconds(now_ns - since_ns) > stale_limit;
  };

  const std::optional<int64_t> last_completed = stats.last_completed_ns();
  if (!last_completed) {
    return verdict(older_than_stale_limit(stats.created_ns())
                       ? ProbeStatus::kStale
                       : ProbeStatus::kUnknown);
  }
  if (thresholds.down_after_failures > 0 &&
      stats.consecutive_failures() >=
          static_cast<uint64_t>(thresholds.down_after_failures)) {
    return verdict(ProbeStatus::kDown);
  }
  if (older_than_stale_limit(*last_completed)) {
    return verdict(ProbeStatus::kStale);
  }
  // Only failures so far, fewer than make it down: nothing has answered
  // yet (e.g. connection set-up), so not ok either.
  if (!stats.last_ok_sample()) return verdict(ProbeStatus::kUnknown);
  constexpr absl::Duration kLossWindow = absl::Minutes(1);
  int64_t counts_change_ns = 0;
  WindowCounts counts = stats.Counts(kLossWindow, now_ns, &counts_change_ns);
  // The set-up failures are in the window while the first success is (the
  // window reaches back at least one minute); only failures can be them.
  if (facts.first_ok_ns &&
      absl::Nanoseconds(now_ns - *facts.first_ok_ns) <= kLossWindow) {
    if (facts.failures_before_first_ok > 0) {
      turns_at(*facts.first_ok_ns, kLossWindow);
    }
    uint64_t setup = std::min(facts.failures_before_first_ok, counts.lost);
    counts.lost -= setup;
    counts.sent -= setup;
  }
  // Slots leaving the window only lower the counts: a window without loss
  // stays without, so only one with loss can change the verdict.
  if (counts.lost > 0 || thresholds.degraded_loss_percent < 0) {
    holds_until = std::min(holds_until, counts_change_ns);
  }
  const std::optional<double> loss = counts.loss_percent();
  if (loss && *loss > thresholds.degraded_loss_percent &&
      counts.sent >=
          static_cast<uint64_t>(std::max(0, thresholds.degraded_min_samples))) {
    return verdict(ProbeStatus::kDegraded);
  }
  return verdict(ProbeStatus::kOk);
}

}  // namespace latency
