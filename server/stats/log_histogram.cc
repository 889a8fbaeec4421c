#include "server/stats/log_histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "server/stats/memory_accounting.h"

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
  const uint64_t key = static_cast<uint64_t>(BucketIndexFor(value_ns))
                       << kIndexShift;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key);
  if (it != entries_.end() && (*it & ~kCountMask) == key) {
    if ((*it & kCountMask) == kCountMask) return;
    ++*it;
  } else {
    entries_.insert(it, key | 1);
  }
  ++count_;
}

void LogHistogram::Merge(const LogHistogram& other) {
  if (other.entries_.empty()) return;
  if (entries_.empty()) {
    *this = other;
    return;
  }
  auto add = [this](uint64_t mine, uint64_t theirs) {
    const uint64_t room = kCountMask - (mine & kCountMask);
    const uint64_t added = std::min(room, theirs & kCountMask);
    count_ += added;
    return mine + added;
  };
  // Size the result exactly so merged histograms carry no spare capacity.
  size_t union_size = entries_.size() + other.entries_.size();
  for (size_t i = 0, j = 0; i < entries_.size() && j < other.entries_.size();) {
    const uint64_t a = entries_[i] >> kIndexShift;
    const uint64_t b = other.entries_[j] >> kIndexShift;
    if (a == b) --union_size;
    i += a <= b;
    j += b <= a;
  }
  if (union_size == entries_.size()) {
    size_t i = 0;
    for (uint64_t theirs : other.entries_) {
      while ((entries_[i] >> kIndexShift) != (theirs >> kIndexShift)) ++i;
      entries_[i] = add(entries_[i], theirs);
    }
    return;
  }
  std::vector<uint64_t> merged;
  merged.reserve(union_size);
  size_t i = 0;
  size_t j = 0;
  while (i < entries_.size() || j < other.entries_.size()) {
    const uint64_t a = i < entries_.size()
                           ? entries_[i] >> kIndexShift
                           : std::numeric_limits<uint64_t>::max();
    const uint64_t b = j < other.entries_.size()
                           ? other.entries_[j] >> kIndexShift
                           : std::numeric_limits<uint64_t>::max();
    if (a < b) {
      merged.push_back(entries_[i++]);
    } else if (b < a) {
      merged.push_back(other.entries_[j]);
      count_ += other.entries_[j++] & kCountMask;
    } else {
      merged.push_back(add(entries_[i++], other.entries_[j++]));
    }
  }
  entries_ = std::move(merged);
}

void LogHistogram::Clear() {
  entries_.clear();
  entries_.shrink_to_fit();
  count_ = 0;
}

std::optional<int64_t> LogHistogram::Quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  if (!(q > 0)) q = 0;
  if (q > 1) q = 1;
  // The small slack keeps q * count from rounding up past an exact rank.
  const double scaled = q * static_cast<double>(count_);
  const uint64_t rank = std::clamp<uint64_t>(
      static_cast<uint64_t>(std::ceil(scaled - 1e-7)), 1, count_);
  const Layout& layout = GetLayout();
  uint64_t seen = 0;
  for (uint64_t entry : entries_) {
    seen += entry & kCountMask;
    if (seen >= rank) return layout.representative[entry >> kIndexShift];
  }
  return layout.representative[entries_.back() >> kIndexShift];
}

uint64_t LogHistogram::CountAtOrBelow(int64_t bound_ns) const {
  const Layout& layout = GetLayout();
  uint64_t total = 0;
  for (uint64_t entry : entries_) {
    if (layout.representative[entry >> kIndexShift] > bound_ns) break;
    total += entry & kCountMask;
  }
  return total;
}

void LogHistogram::ForEachBucket(
    absl::FunctionRef<void(const Bucket&)> fn) const {
  for (uint64_t entry : entries_) {
    Bucket bucket = BucketAt(static_cast<int>(entry >> kIndexShift));
    bucket.count = entry & kCountMask;
    fn(bucket);
  }
}

size_t LogHistogram::ApproxMemoryBytes() const {
  return sizeof(*this) +
         stats_internal::HeapBlockBytes(entries_.capacity() * sizeof(uint64_t));
}

}  // namespace latency
