#ifndef LATENCY_SERVER_API_HISTORY_QUERY_H_
#define LATENCY_SERVER_API_HISTORY_QUERY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "latency/v1/latency.pb.h"
#include "server/history/history_db.h"
#include "server/sample.h"

namespace latency {

// The point grid a history request is served on: whole stored rows
// (minutes, or hours when the step is an hour or more or the range starts
// before the minute retention), at most kMaxHistoryPoints points.
struct HistoryGrid {
  int64_t start_s = 0;       // snapped down to the step
  int64_t end_s = 0;         // exclusive
  int64_t step_s = 0;        // a multiple of resolution_s
  int64_t resolution_s = 0;  // 60 or 3600
};
inline constexpr int64_t kMaxHistoryPoints = 10'000;
// About this many points when the request names no step.
inline constexpr int64_t kDefaultHistoryPoints = 300;

// Snaps a request's range and step (`step` zero: the default) at `now`.
// INVALID_ARGUMENT for an empty or reversed range.
absl::StatusOr<HistoryGrid> SnapHistoryGrid(absl::Time start, absl::Time end,
                                            absl::Duration step, absl::Time now,
                                            const HistoryRetention& retention);

// Reads the series' rows on `grid` and merges them into points, one per
// step (an empty point where nothing is stored).
absl::StatusOr<v1::GetHistoryResponse> ReadHistory(HistoryDb& db,
                                                   const std::string& target,
                                                   ProbeKind kind,
                                                   const HistoryGrid& grid);

}  // namespace latency

#endif  // LATENCY_SERVER_API_HISTORY_QUERY_H_
