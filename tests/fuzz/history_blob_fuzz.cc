// Fuzzes the history database's blob decoders with arbitrary bytes, as a
// damaged or hostile file would hand them over: byte 0 picks HistoryRow,
// LogHistogram or a minute chunk, the rest is the blob. Checks:
//  - decoding never crashes, and fails with InvalidArgument only;
//  - whatever decodes re-encodes to bytes that decode to an equal value
//    (a row, a histogram, a chunk's rows), so a stored blob read, merged
//    and written back never changes;
//  - a chunk's rows lie in its hour, in ascending distinct minutes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/history/minute_chunk.h"
#include "server/stats/history_row.h"
#include "server/stats/log_histogram.h"
#include "tests/fuzz/fuzz_util.h"

namespace latency {
namespace {

constexpr int64_t kHour = 1'796'000'400;

void CheckFailure(const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument,
             status.ToString());
}

void Row(absl::string_view bytes) {
  absl::StatusOr<HistoryRow> row = HistoryRow::Decode(kHour, bytes);
  if (!row.ok()) return CheckFailure(row.status());
  absl::StatusOr<HistoryRow> again = HistoryRow::Decode(kHour, row->Encode());
  FUZZ_CHECK(again.ok() && *again == *row, again.status().ToString());
}

void Histogram(absl::string_view bytes) {
  absl::StatusOr<LogHistogram> histogram = LogHistogram::Decode(bytes);
  if (!histogram.ok()) return CheckFailure(histogram.status());
  absl::StatusOr<LogHistogram> again =
      LogHistogram::Decode(histogram->Encode());
  FUZZ_CHECK(again.ok() && *again == *histogram, again.status().ToString());
}

void Chunk(absl::string_view bytes) {
  absl::StatusOr<std::vector<HistoryRow>> rows =
      DecodeMinuteChunk(kHour, bytes);
  if (!rows.ok()) return CheckFailure(rows.status());
  int64_t previous = kHour - 60;
  for (const HistoryRow& row : *rows) {
    FUZZ_CHECK(row.start_s > previous && row.start_s < kHour + 3600 &&
                   row.start_s % 60 == kHour % 60,
               absl::StrCat("row at ", row.start_s));
    previous = row.start_s;
  }
  absl::StatusOr<std::vector<HistoryRow>> again =
      DecodeMinuteChunk(kHour, EncodeMinuteChunk(kHour, *rows));
  FUZZ_CHECK(again.ok() && *again == *rows, again.status().ToString());
}

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view blob(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  switch (data[0] % 3) {
    case 0:
      latency::Row(blob);
      break;
    case 1:
      latency::Histogram(blob);
      break;
    default:
      latency::Chunk(blob);
      break;
  }
  return 0;
}
