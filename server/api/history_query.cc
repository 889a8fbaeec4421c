#include "server/api/history_query.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "server/stats/history_row.h"

namespace latency {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int64_t kMinute = 60;
constexpr int64_t kHour = 3600;

double Ms(double ns) { return ns / 1e6; }

uint32_t Count32(uint64_t n) {
  return static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
}

int64_t CeilTo(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

void FillPoint(const HistoryRow& row, v1::HistoryPoint& point) {
  point.set_sent(Count32(row.sent));
  point.set_received(Count32(row.received));
  point.set_lost(Count32(row.lost()));
  if (row.sent == 0) return;
  point.set_loss_percent(100.0 * static_cast<double>(row.lost()) /
                         static_cast<double>(row.sent));
  for (int i = 1; i < kNumSampleResults; ++i) {
    if (row.failures[i] == 0) continue;
    (*point
          .mutable_failures())[SampleResultName(static_cast<SampleResult>(i))] =
        Count32(row.failures[i]);
  }
  point.set_status(ProbeStatusName(row.status));
  if (row.received == 0) return;
  point.set_min_ms(Ms(static_cast<double>(row.min_ns)));
  point.set_max_ms(Ms(static_cast<double>(row.max_ns)));
  point.set_mean_ms(Ms(*row.mean_ns()));
  point.set_stddev_ms(Ms(*row.stddev_ns()));
  // Clamped to [min, max] like the live windows': only closer to the truth.
  auto quantile = [&](double q) {
    return Ms(static_cast<double>(
        std::clamp(*row.rtt.Quantile(q), row.min_ns, row.max_ns)));
  };
  point.set_p1_ms(quantile(0.01));
  point.set_p10_ms(quantile(0.10));
  point.set_p50_ms(quantile(0.50));
  point.set_p90_ms(quantile(0.90));
  point.set_p99_ms(quantile(0.99));
  point.set_p999_ms(quantile(0.999));
  if (std::optional<int64_t> network = row.network_rtt.Quantile(0.5)) {
    point.set_network_p50_ms(Ms(static_cast<double>(*network)));
  }
}

}  // namespace

absl::StatusOr<HistoryGrid> SnapHistoryGrid(absl::Time start, absl::Time end,
                                            absl::Duration step, absl::Time now,
                                            const HistoryRetention& retention) {
  if (start >= end) {
    return absl::InvalidArgumentError(
        "start must be before end (RFC 3339 times, e.g. "
        "2026-12-04T10:00:00Z)");
  }
  if (step < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("step must not be negative");
  }
  HistoryGrid grid;
  const int64_t start_s = absl::ToUnixSeconds(start);
  int64_t end_s = absl::ToUnixSeconds(end);
  if (absl::FromUnixSeconds(end_s) < end) ++end_s;  // whole seconds, up
  const int64_t range_s = std::max<int64_t>(1, end_s - start_s);
  int64_t step_s = step == absl::ZeroDuration()
                       ? range_s / kDefaultHistoryPoints
                       : absl::ToInt64Seconds(step);
  const bool minutes_cover =
      start >= now - retention.minutes - absl::Minutes(1);
  grid.resolution_s = step_s < kHour && minutes_cover ? kMinute : kHour;
  step_s = std::max(grid.resolution_s, CeilTo(step_s, grid.resolution_s));
  // At most kMaxHistoryPoints points: a coarser step, still whole rows.
  if (range_s / step_s >= kMaxHistoryPoints) {
    step_s = CeilTo(CeilTo(range_s, kMaxHistoryPoints) / kMaxHistoryPoints,
                    grid.resolution_s);
  }
  grid.step_s = step_s;
  grid.start_s = start_s / step_s * step_s;
  if (grid.start_s > start_s) grid.start_s -= step_s;
  grid.end_s = end_s;
  return grid;
}

absl::StatusOr<v1::GetHistoryResponse> ReadHistory(HistoryDb& db,
                                                   const std::string& target,
                                                   ProbeKind kind,
                                                   const HistoryGrid& grid) {
  absl::StatusOr<std::vector<HistoryRow>> rows =
      db.Read(target, kind, grid.start_s, grid.end_s, grid.resolution_s);
  if (!rows.ok()) return rows.status();
  v1::GetHistoryResponse response;
  response.set_target(target);
  response.set_kind(kind == ProbeKind::kIcmp ? v1::PROBE_KIND_ICMP
                                             : v1::PROBE_KIND_GRPC);
  *response.mutable_start() = TimeUtil::SecondsToTimestamp(grid.start_s);
  *response.mutable_end() = TimeUtil::SecondsToTimestamp(grid.end_s);
  *response.mutable_step() = TimeUtil::SecondsToDuration(grid.step_s);
  response.set_resolution(grid.resolution_s == kMinute ? "minute" : "hour");
  auto row = rows->begin();
  for (int64_t t = grid.start_s; t < grid.end_s; t += grid.step_s) {
    HistoryRow merged;
    merged.start_s = t;
    for (; row != rows->end() && row->start_s < t + grid.step_s; ++row) {
      if (row->start_s >= t) merged.Merge(*row);
    }
    v1::HistoryPoint& point = *response.add_points();
    *point.mutable_time() = TimeUtil::SecondsToTimestamp(t);
    FillPoint(merged, point);
  }
  return response;
}

}  // namespace latency
