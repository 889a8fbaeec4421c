#ifndef LATENCY_SERVER_HISTORY_MINUTE_CHUNK_H_
#define LATENCY_SERVER_HISTORY_MINUTE_CHUNK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/stats/history_row.h"

namespace latency {

// A minute chunk is one series' minute rows of one ended hour in one
// compressed blob: the history database keeps an hour in one SQLite row
// instead of sixty, and deflate finds what consecutive minutes of a steady
// series share (counts, status, the same buckets).
//
// `rows` are minute rows of the hour starting at `hour_start_s`, in
// ascending, distinct minutes (at most 60).
std::string EncodeMinuteChunk(int64_t hour_start_s,
                              const std::vector<HistoryRow>& rows);

// The rows EncodeMinuteChunk packed, oldest first; InvalidArgument for bytes
// it cannot have produced (a damaged file, a newer format).
absl::StatusOr<std::vector<HistoryRow>> DecodeMinuteChunk(
    int64_t hour_start_s, absl::string_view bytes);

}  // namespace latency

#endif  // LATENCY_SERVER_HISTORY_MINUTE_CHUNK_H_
