#include "server/stats/log_histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/stats/memory_accounting.h"
#include "server/stats/varint.h"

namespace latency {
namespace {

// Bucket bounds and representatives, computed once. lower[i] is bucket i's
// smallest value; lower has one extra entry so that bucket i's largest value
// is lower[i + 1] - 1.
struct Layout {
  std::vector<int64_t> lower;
  std::vector<int64_t> representative;
  int overflow_index = 0;
  double inverse_log_growth = 0;
};

double MaxRelativeError(int64_t value, int64_t lo, int64_t hi) {
  return std::max(static_cast<double>(value - lo) / static_cast<double>(lo),
                  static_cast<double>(hi - value) / static_cast<double>(hi));
}

int64_t BestRepresentative(int64_t lo, int64_t hi) {
  if (lo == hi) return lo;
  const double harmonic = 2.0 * static_cast<double>(lo) *
                          static_cast<double>(hi) /
                          static_cast<double>(lo + hi);
  const int64_t down =
      std::clamp(static_cast<int64_t>(std::floor(harmonic)), lo, hi);
  const int64_t up = std::min(down + 1, hi);
  return MaxRelativeError(down, lo, hi) <= MaxRelativeError(up, lo, hi) ? down
                                                                        : up;
}

Layout* BuildLayout() {
  auto* layout = new Layout();
  constexpr int64_t kOverflowLower = LogHistogram::kMaxValueNs + 1;
  for (int64_t v = 0; v < LogHistogram::kExactLimit; ++v) {
    layout->lower.push_back(v);
  }
  const double base = static_cast<double>(LogHistogram::kExactLimit);
  for (int j = 0;; ++j) {
    int64_t lower = static_cast<int64_t>(
        std::ceil(base * std::pow(LogHistogram::kGrowthFactor, j)));
    lower = std::max(lower, layout->lower.back() + 1);
    if (lower >= kOverflowLower) break;
    layout->lower.push_back(lower);
  }
  layout->overflow_index = static_cast<int>(layout->lower.size());
  layout->lower.push_back(kOverflowLower);
  layout->lower.push_back(std::numeric_limits<int64_t>::max());

  for (int i = 0; i < layout->overflow_index; ++i) {
    layout->representative.push_back(
        BestRepresentative(layout->lower[i], layout->lower[i + 1] - 1));
  }
  layout->representative.push_back(kOverflowLower);
  layout->inverse_log_growth = 1.0 / std::log(LogHistogram::kGrowthFactor);
  return layout;
}

const Layout& GetLayout() {
  static const Layout* const layout = BuildLayout();
  return *layout;
}

}  // namespace

uint64_t NearestRank(double q, uint64_t count) {
  if (!(q > 0)) q = 0;
  if (q > 1) q = 1;
  // The small slack keeps q * count from rounding up past an exact rank.
  const double scaled = q * static_cast<double>(count);
  return std::clamp<uint64_t>(static_cast<uint64_t>(std::ceil(scaled - 1e-7)),
                              1, count);
}

int LogHistogram::NumBuckets() { return GetLayout().overflow_index + 1; }

int LogHistogram::BucketIndexFor(int64_t value_ns) {
  if (value_ns < kExactLimit) {
    return value_ns < 0 ? 0 : static_cast<int>(value_ns);
  }
  const Layout& layout = GetLayout();
  if (value_ns > kMaxValueNs) return layout.overflow_index;
  const double estimate =
      std::log(static_cast<double>(value_ns) / kExactLimit) *
      layout.inverse_log_growth;
  int index =
      std::clamp(static_cast<int>(kExactLimit) + static_cast<int>(estimate),
                 static_cast<int>(kExactLimit), layout.overflow_index - 1);
  while (value_ns < layout.lower[index]) --index;
  while (value_ns >= layout.lower[index + 1]) ++index;
  return index;
}

LogHistogram::Bucket LogHistogram::BucketAt(int index) {
  const Layout& layout = GetLayout();
  index = std::clamp(index, 0, layout.overflow_index);
  Bucket bucket;
  bucket.lower_ns = layout.lower[index];
  bucket.upper_ns = index == layout.overflow_index
                        ? std::numeric_limits<int64_t>::max()
                        : layout.lower[index + 1] - 1;
  bucket.representative_ns = layout.representative[index];
  return bucket;
}

void LogHistogram::Record(int64_t value_ns) {
  const uint32_t index = static_cast<uint32_t>(BucketIndexFor(value_ns));
  const uint32_t next_key = (index + 1) << kIndexShift;
  // The bucket's last entry (the only one that may have room) is just before
  // the first entry of the next bucket.
  auto it = std::lower_bound(entries_.begin(), entries_.end(), next_key);
  if (it != entries_.begin() && (*std::prev(it) >> kIndexShift) == index &&
      (*std::prev(it) & kMaxEntryCount) < kMaxEntryCount) {
    ++*std::prev(it);
  } else {
    entries_.insert(it, (index << kIndexShift) | 1);
  }
  ++count_;
}

void LogHistogram::AppendBucket(uint32_t index, uint64_t count,
                                std::vector<uint32_t>& out) {
  for (; count > kMaxEntryCount; count -= kMaxEntryCount) {
    out.push_back((index << kIndexShift) | kMaxEntryCount);
  }
  if (count > 0) out.push_back((index << kIndexShift) | count);
}

void LogHistogram::Merge(const LogHistogram& other) {
  if (other.entries_.empty()) return;
  if (entries_.empty()) {
    *this = other;
    return;
  }
  std::vector<uint32_t> merged;
  merged.reserve(entries_.size() + other.entries_.size());
  size_t i = 0;
  size_t j = 0;
  constexpr uint32_t kEnd = std::numeric_limits<uint32_t>::max();
  while (i < entries_.size() || j < other.entries_.size()) {
    const uint32_t a = i < entries_.size() ? entries_[i] >> kIndexShift : kEnd;
    const uint32_t b =
        j < other.entries_.size() ? other.entries_[j] >> kIndexShift : kEnd;
    const uint32_t index = std::min(a, b);
    uint64_t count = 0;
    for (; i < entries_.size() && (entries_[i] >> kIndexShift) == index; ++i) {
      count += entries_[i] & kMaxEntryCount;
    }
    for (; j < other.entries_.size() &&
           (other.entries_[j] >> kIndexShift) == index;
         ++j) {
      count += other.entries_[j] & kMaxEntryCount;
    }
    AppendBucket(index, count, merged);
  }
  // Size the result exactly so merged histograms carry no spare capacity.
  merged.shrink_to_fit();
  entries_ = std::move(merged);
  count_ += other.count_;
}

std::string LogHistogram::Encode() const {
  std::string out;
  out.reserve(entries_.size() + 4);
  int64_t previous = -1;
  for (size_t i = 0; i < entries_.size();) {
    const uint32_t index = entries_[i] >> kIndexShift;
    uint64_t count = 0;
    for (; i < entries_.size() && (entries_[i] >> kIndexShift) == index; ++i) {
      count += entries_[i] & kMaxEntryCount;
    }
    const uint64_t gap = static_cast<uint64_t>(index - previous - 1);
    previous = index;
    if (gap < 16 && count < 16) {
      out.push_back(static_cast<char>(gap << 4 | count));  // never 0
    } else {
      out.push_back('\0');
      AppendVarint(gap, out);
      AppendVarint(count, out);
    }
  }
  return out;
}

// More values than any stored period holds (an hour at 1,000 probes/s is
// 3.6 million): a larger count is damage, and expanding it into entries of
// kMaxEntryCount would take memory and time without bound.
namespace {
constexpr uint64_t kMaxDecodedCount = uint64_t{1} << 32;
}  // namespace

absl::StatusOr<LogHistogram> LogHistogram::Decode(absl::string_view bytes) {
  LogHistogram h;
  const int64_t buckets = NumBuckets();
  int64_t previous = -1;
  for (size_t pos = 0; pos < bytes.size();) {
    uint64_t gap = 0;
    uint64_t count = 0;
    const auto lead = static_cast<uint8_t>(bytes[pos++]);
    if (lead != 0) {
      gap = lead >> 4;
      count = lead & 0x0f;
    } else if (!ReadVarint(bytes, pos, gap) || !ReadVarint(bytes, pos, count)) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram: truncated bucket at byte ", pos));
    }
    if (count == 0 || gap >= static_cast<uint64_t>(buckets) ||
        previous + 1 + static_cast<int64_t>(gap) >= buckets ||
        count > kMaxDecodedCount - h.count_) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram: invalid bucket before byte ", pos));
    }
    previous += 1 + static_cast<int64_t>(gap);
    AppendBucket(static_cast<uint32_t>(previous), count, h.entries_);
    h.count_ += count;
  }
  h.entries_.shrink_to_fit();
  return h;
}

void LogHistogram::Clear() {
  entries_.clear();
  entries_.shrink_to_fit();
  count_ = 0;
}

size_t LogHistogram::populated_buckets() const {
  size_t buckets = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    buckets += i == 0 ||
               (entries_[i] >> kIndexShift) != (entries_[i - 1] >> kIndexShift);
  }
  return buckets;
}

std::optional<int64_t> LogHistogram::Quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  const uint64_t rank = NearestRank(q, count_);
  const Layout& layout = GetLayout();
  uint64_t seen = 0;
  for (uint32_t entry : entries_) {
    seen += entry & kMaxEntryCount;
    if (seen >= rank) return layout.representative[entry >> kIndexShift];
  }
  return layout.representative[entries_.back() >> kIndexShift];
}

uint64_t LogHistogram::CountAtOrBelow(int64_t bound_ns) const {
  const Layout& layout = GetLayout();
  uint64_t total = 0;
  for (uint32_t entry : entries_) {
    if (layout.representative[entry >> kIndexShift] > bound_ns) break;
    total += entry & kMaxEntryCount;
  }
  return total;
}

void LogHistogram::ForEachBucket(
    absl::FunctionRef<void(const Bucket&)> fn) const {
  for (size_t i = 0; i < entries_.size();) {
    const uint32_t index = entries_[i] >> kIndexShift;
    Bucket bucket = BucketAt(static_cast<int>(index));
    for (; i < entries_.size() && (entries_[i] >> kIndexShift) == index; ++i) {
      bucket.count += entries_[i] & kMaxEntryCount;
    }
    fn(bucket);
  }
}

size_t LogHistogram::ApproxMemoryBytes() const {
  return sizeof(*this) +
         stats_internal::HeapBlockBytes(entries_.capacity() * sizeof(uint32_t));
}

}  // namespace latency
