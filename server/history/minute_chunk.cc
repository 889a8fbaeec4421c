#include "server/history/minute_chunk.h"

#include <zlib.h>

#include <array>

#include "absl/strings/str_cat.h"
#include "server/stats/varint.h"

namespace latency {
namespace {

// Layout: the format byte, the unpacked length (varint), then zlib's
// stream of the unpacked bytes (kStored: the bytes themselves). Unpacked:
// the row count, then each column below as its length and bytes. A column
// holds one field of every row in turn (of the rows that received replies
// for the RTT fields), so deflate sees runs of like values: equal counts and
// statuses shrink to nothing, aggregates are deltas from the previous row's,
// histograms are LogHistogram's bytes, one after another.
constexpr char kStored = 0;
constexpr char kDeflate = 1;
constexpr int64_t kMinute = 60;
constexpr int64_t kMinutesPerHour = 60;
// Sixty minute rows of at most 60 probes each stay far below this; a
// larger declared length is damage, not data.
constexpr uint64_t kMaxUnpacked = 4 << 20;

enum Column {
  kMinuteGaps,  // minutes skipped since the previous row
  kCounts,      // sent, received, the failures of each result but kOk
  kStatus,
  kMinDelta,  // zigzag(min - previous row's min)
  kSpread,    // max - min
  kSumDelta,
  kSquaresLowDelta,  // the sum of squares' low and high 64 bits
  kSquaresHighDelta,
  kRtt,  // length and bytes of each histogram
  kNetworkRtt,
  kNumColumns
};

uint64_t ZigZagDelta(uint64_t value, uint64_t& previous) {
  const auto delta = static_cast<int64_t>(value - previous);  // wraps
  previous = value;
  return (static_cast<uint64_t>(delta) << 1) ^
         static_cast<uint64_t>(delta >> 63);
}

uint64_t UndoZigZagDelta(uint64_t zigzag, uint64_t& previous) {
  const uint64_t delta = (zigzag >> 1) ^ (~(zigzag & 1) + 1);
  previous += delta;
  return previous;
}

void AppendBytes(absl::string_view bytes, std::string& out) {
  AppendVarint(bytes.size(), out);
  out.append(bytes.data(), bytes.size());
}

bool ReadBytes(absl::string_view in, size_t& pos, absl::string_view& bytes) {
  uint64_t length = 0;
  if (!ReadVarint(in, pos, length) || length > in.size() - pos) return false;
  bytes = in.substr(pos, length);
  pos += length;
  return true;
}

// One column being read: its bytes and a position.
struct Cursor {
  absl::string_view bytes;
  size_t pos = 0;
  bool Varint(uint64_t& value) { return ReadVarint(bytes, pos, value); }
  bool Bytes(absl::string_view& out) { return ReadBytes(bytes, pos, out); }
  bool done() const { return pos == bytes.size(); }
};

}  // namespace

std::string EncodeMinuteChunk(int64_t hour_start_s,
                              const std::vector<HistoryRow>& rows) {
  std::array<std::string, kNumColumns> columns;
  int64_t previous_minute = -1;
  uint64_t min = 0, sum = 0, low = 0, high = 0;
  for (const HistoryRow& row : rows) {
    const int64_t minute = (row.start_s - hour_start_s) / kMinute;
    AppendVarint(static_cast<uint64_t>(minute - previous_minute - 1),
                 columns[kMinuteGaps]);
    previous_minute = minute;
    AppendVarint(row.sent, columns[kCounts]);
    AppendVarint(row.received, columns[kCounts]);
    for (int i = 1; i < kNumSampleResults; ++i) {
      AppendVarint(row.failures[i], columns[kCounts]);
    }
    AppendVarint(static_cast<uint64_t>(row.status), columns[kStatus]);
    if (row.received == 0) continue;
    AppendVarint(ZigZagDelta(static_cast<uint64_t>(row.min_ns), min),
                 columns[kMinDelta]);
    AppendVarint(static_cast<uint64_t>(row.max_ns - row.min_ns),
                 columns[kSpread]);
    AppendVarint(ZigZagDelta(row.sum_ns, sum), columns[kSumDelta]);
    AppendVarint(ZigZagDelta(static_cast<uint64_t>(row.sum_squares_ns2), low),
                 columns[kSquaresLowDelta]);
    AppendVarint(
        ZigZagDelta(static_cast<uint64_t>(row.sum_squares_ns2 >> 64), high),
        columns[kSquaresHighDelta]);
    AppendBytes(row.rtt.Encode(), columns[kRtt]);
    AppendBytes(row.network_rtt.Encode(), columns[kNetworkRtt]);
  }
  std::string unpacked;
  AppendVarint(rows.size(), unpacked);
  for (const std::string& column : columns) AppendBytes(column, unpacked);

  std::string out(1, kDeflate);
  AppendVarint(unpacked.size(), out);
  uLongf packed_size = compressBound(unpacked.size());
  const size_t header = out.size();
  out.resize(header + packed_size);
  // Level 9: an hour is packed once and read many times.
  if (compress2(reinterpret_cast<Bytef*>(out.data() + header), &packed_size,
                reinterpret_cast<const Bytef*>(unpacked.data()),
                unpacked.size(), Z_BEST_COMPRESSION) != Z_OK) {
    // Only out of memory: keep the rows unpacked rather than lose them.
    out.resize(header);
    out[0] = kStored;
    return out + unpacked;
  }
  out.resize(header + packed_size);
  return out;
}

absl::StatusOr<std::vector<HistoryRow>> DecodeMinuteChunk(
    int64_t hour_start_s, absl::string_view bytes) {
  auto invalid = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("minute chunk at ", hour_start_s, ": ", what));
  };
  if (bytes.empty() || (bytes[0] != kDeflate && bytes[0] != kStored)) {
    return invalid("unknown format");
  }
  size_t pos = 1;
  uint64_t unpacked_size = 0;
  if (!ReadVarint(bytes, pos, unpacked_size) || unpacked_size > kMaxUnpacked) {
    return invalid("bad length");
  }
  std::string unpacked(unpacked_size, '\0');
  if (bytes[0] == kStored) {
    if (bytes.size() - pos != unpacked_size) return invalid("bad length");
    unpacked = std::string(bytes.substr(pos));
  } else {
    uLongf size = unpacked_size;
    if (uncompress(reinterpret_cast<Bytef*>(unpacked.data()), &size,
                   reinterpret_cast<const Bytef*>(bytes.data() + pos),
                   bytes.size() - pos) != Z_OK ||
        size != unpacked_size) {
      return invalid("damaged");
    }
  }

  size_t at = 0;
  uint64_t count = 0;
  if (!ReadVarint(unpacked, at, count) || count > kMinutesPerHour) {
    return invalid("bad row count");
  }
  std::array<Cursor, kNumColumns> columns;
  for (Cursor& column : columns) {
    if (!ReadBytes(unpacked, at, column.bytes)) return invalid("truncated");
  }
  if (at != unpacked.size()) return invalid("trailing bytes");

  // Each row is put back into HistoryRow::Encode's layout and decoded
  // there, so a chunk's rows pass the same checks as a stored row's.
  std::vector<HistoryRow> rows;
  rows.reserve(count);
  int64_t minute = -1;
  uint64_t min = 0, sum = 0, low = 0, high = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t skipped = 0;
    if (!columns[kMinuteGaps].Varint(skipped) ||
        skipped >= static_cast<uint64_t>(kMinutesPerHour - 1 - minute)) {
      return invalid("bad minute");
    }
    minute += 1 + static_cast<int64_t>(skipped);
    std::string row_bytes;
    uint64_t value = 0;
    uint64_t received = 0;
    for (int field = 0; field < 1 + kNumSampleResults; ++field) {
      if (!columns[kCounts].Varint(value)) return invalid("truncated counts");
      if (field == 1) received = value;
      AppendVarint(value, row_bytes);
    }
    if (!columns[kStatus].Varint(value)) return invalid("truncated status");
    AppendVarint(value, row_bytes);
    if (received > 0) {
      uint64_t spread = 0;
      uint64_t deltas[4];
      absl::string_view rtt;
      absl::string_view network_rtt;
      if (!columns[kMinDelta].Varint(deltas[0]) ||
          !columns[kSpread].Varint(spread) ||
          !columns[kSumDelta].Varint(deltas[1]) ||
          !columns[kSquaresLowDelta].Varint(deltas[2]) ||
          !columns[kSquaresHighDelta].Varint(deltas[3]) ||
          !columns[kRtt].Bytes(rtt) ||
          !columns[kNetworkRtt].Bytes(network_rtt)) {
        return invalid("truncated aggregates");
      }
      AppendVarint(UndoZigZagDelta(deltas[0], min), row_bytes);
      AppendVarint(spread, row_bytes);
      AppendVarint(UndoZigZagDelta(deltas[1], sum), row_bytes);
      AppendVarint(UndoZigZagDelta(deltas[2], low), row_bytes);
      AppendVarint(UndoZigZagDelta(deltas[3], high), row_bytes);
      AppendBytes(rtt, row_bytes);
      AppendBytes(network_rtt, row_bytes);
    }
    absl::StatusOr<HistoryRow> row =
        HistoryRow::Decode(hour_start_s + minute * kMinute, row_bytes);
    if (!row.ok()) return row.status();
    rows.push_back(*std::move(row));
  }
  for (const Cursor& column : columns) {
    if (!column.done()) return invalid("trailing bytes in a column");
  }
  return rows;
}

}  // namespace latency
