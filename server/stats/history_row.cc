#include "server/stats/history_row.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/stats/varint.h"

namespace latency {

namespace {

// The worse of two statuses a row reached, where unknown (no status yet)
// counts only when there is nothing else.
ProbeStatus WorseReached(ProbeStatus a, ProbeStatus b) {
  if (a == ProbeStatus::kUnknown) return b;
  if (b == ProbeStatus::kUnknown) return a;
  return Worst(a, b);
}

}  // namespace

void HistoryRow::Add(const Sample& sample, ProbeStatus status_after) {
  ++sent;
  status = WorseReached(status, status_after);
  if (!sample.ok() || !sample.rtt_ns) {
    ++failures[static_cast<int>(sample.result)];
    return;
  }
  const int64_t value = std::max<int64_t>(0, *sample.rtt_ns);
  min_ns = received == 0 ? value : std::min(min_ns, value);
  max_ns = received == 0 ? value : std::max(max_ns, value);
  ++received;
  sum_ns += static_cast<uint64_t>(value);
  sum_squares_ns2 += static_cast<unsigned __int128>(value) *
                     static_cast<unsigned __int128>(value);
  rtt.Record(value);
  if (std::optional<int64_t> network = sample.network_rtt_ns()) {
    network_rtt.Record(*network);
  }
}

void HistoryRow::Merge(const HistoryRow& other) {
  if (other.received > 0) {
    min_ns = received == 0 ? other.min_ns : std::min(min_ns, other.min_ns);
    max_ns = received == 0 ? other.max_ns : std::max(max_ns, other.max_ns);
  }
  sent += other.sent;
  received += other.received;
  for (size_t i = 0; i < failures.size(); ++i) failures[i] += other.failures[i];
  status = WorseReached(status, other.status);
  sum_ns += other.sum_ns;
  sum_squares_ns2 += other.sum_squares_ns2;
  rtt.Merge(other.rtt);
  network_rtt.Merge(other.network_rtt);
}

std::optional<double> HistoryRow::mean_ns() const {
  if (received == 0) return std::nullopt;
  return static_cast<double>(sum_ns) / static_cast<double>(received);
}

std::optional<double> HistoryRow::stddev_ns() const {
  std::optional<double> mean = mean_ns();
  if (!mean) return std::nullopt;
  const double variance =
      static_cast<double>(static_cast<long double>(sum_squares_ns2) /
                          static_cast<long double>(received)) -
      *mean * *mean;
  return std::sqrt(std::max(0.0, variance));
}

// Layout: sent, received, the failures of each result but kOk, status, then
// when received > 0: min, max - min, sum, the sum of squares (its low and
// high 64 bits), then each histogram as a length and LogHistogram's bytes.
std::string HistoryRow::Encode() const {
  std::string out;
  out.reserve(64);
  AppendVarint(sent, out);
  AppendVarint(received, out);
  for (int i = 1; i < kNumSampleResults; ++i) AppendVarint(failures[i], out);
  AppendVarint(static_cast<uint64_t>(status), out);
  if (received == 0) return out;
  AppendVarint(static_cast<uint64_t>(min_ns), out);
  AppendVarint(static_cast<uint64_t>(max_ns - min_ns), out);
  AppendVarint(sum_ns, out);
  AppendVarint(static_cast<uint64_t>(sum_squares_ns2), out);
  AppendVarint(static_cast<uint64_t>(sum_squares_ns2 >> 64), out);
  for (const LogHistogram* h : {&rtt, &network_rtt}) {
    std::string bytes = h->Encode();
    AppendVarint(bytes.size(), out);
    out += bytes;
  }
  return out;
}

absl::StatusOr<HistoryRow> HistoryRow::Decode(int64_t start_s,
                                              absl::string_view bytes) {
  auto invalid = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("history row at ", start_s, ": ", what));
  };
  HistoryRow row;
  row.start_s = start_s;
  size_t pos = 0;
  uint64_t value = 0;
  if (!ReadVarint(bytes, pos, row.sent) ||
      !ReadVarint(bytes, pos, row.received)) {
    return invalid("truncated counts");
  }
  uint64_t failed = 0;
  for (int i = 1; i < kNumSampleResults; ++i) {
    if (!ReadVarint(bytes, pos, row.failures[i])) return invalid("truncated");
    failed += row.failures[i];
  }
  if (row.received + failed != row.sent) return invalid("counts disagree");
  if (!ReadVarint(bytes, pos, value) ||
      value > static_cast<uint64_t>(ProbeStatus::kNoPermission)) {
    return invalid("bad status");
  }
  row.status = static_cast<ProbeStatus>(value);
  if (row.received == 0) {
    if (pos != bytes.size()) return invalid("trailing bytes");
    return row;
  }
  uint64_t min = 0;
  uint64_t spread = 0;
  uint64_t low = 0;
  uint64_t high = 0;
  if (!ReadVarint(bytes, pos, min) || !ReadVarint(bytes, pos, spread) ||
      !ReadVarint(bytes, pos, row.sum_ns) || !ReadVarint(bytes, pos, low) ||
      !ReadVarint(bytes, pos, high) || min > static_cast<uint64_t>(INT64_MAX) ||
      spread > static_cast<uint64_t>(INT64_MAX) - min) {
    return invalid("truncated aggregates");
  }
  row.min_ns = static_cast<int64_t>(min);
  row.max_ns = static_cast<int64_t>(min + spread);
  row.sum_squares_ns2 = static_cast<unsigned __int128>(high) << 64 | low;
  for (LogHistogram* h : {&row.rtt, &row.network_rtt}) {
    uint64_t length = 0;
    if (!ReadVarint(bytes, pos, length) || length > bytes.size() - pos) {
      return invalid("truncated histogram");
    }
    absl::StatusOr<LogHistogram> decoded =
        LogHistogram::Decode(bytes.substr(pos, length));
    if (!decoded.ok()) return invalid(decoded.status().message());
    *h = *std::move(decoded);
    pos += length;
  }
  if (row.rtt.count() != row.received) return invalid("histogram count");
  if (pos != bytes.size()) return invalid("trailing bytes");
  return row;
}

bool operator==(const HistoryRow& a, const HistoryRow& b) {
  return a.start_s == b.start_s && a.sent == b.sent &&
         a.received == b.received && a.failures == b.failures &&
         a.status == b.status && a.min_ns == b.min_ns && a.max_ns == b.max_ns &&
         a.sum_ns == b.sum_ns && a.sum_squares_ns2 == b.sum_squares_ns2 &&
         a.rtt == b.rtt && a.network_rtt == b.network_rtt;
}

int64_t PeriodStart(absl::Time when, int64_t length_s) {
  const int64_t seconds = absl::ToUnixSeconds(when);
  // Floor division: times before 1970 still land at their period's start.
  int64_t start = seconds / length_s * length_s;
  if (start > seconds) start -= length_s;
  return start;
}

}  // namespace latency
