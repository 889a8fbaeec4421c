#ifndef LATENCY_SERVER_STATS_LOG_HISTOGRAM_H_
#define LATENCY_SERVER_STATS_LOG_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace latency {

// The 1-based rank of the nearest-rank q-quantile among `count` values
// (count > 0): ceil(q * count), at least 1. q is clamped to [0, 1]; NaN
// reads as 0.
uint64_t NearestRank(double q, uint64_t count);

// LogHistogram counts non-negative int64 values (nanoseconds) in logarithmic
// buckets and answers quantiles with at most 0.1% relative error (three
// significant digits, as HdrHistogram's and DDSketch's alpha = 0.001).
// Histograms merge exactly: Merge(a, b) equals recording a's and b's values
// into one.
//
// Buckets (the same for every histogram; history stores their indices, so
// the layout is part of the on-disk format):
//   - Exact buckets: every value 0..kExactLimit-1 (0..4,095 ns) has its own.
//     Bucket 0 is also the underflow bucket: negative values are recorded
//     as 0.
//   - Log buckets from kExactLimit up to kMaxValueNs (10^13 ns = 10,000 s):
//     each bucket's lower bound is kGrowthFactor times the previous one's,
//     rounded up to an integer. kGrowthFactor = (1 + a) / (1 - a) with
//     a = 0.0009, i.e. about 1.0018: the real number nearest every value of
//     [lo, lo * kGrowthFactor] is within a = 0.09% of it (DDSketch's
//     mapping). Each bucket reports one integer representative (the integer
//     nearest the harmonic mean of its bounds); rounding to an integer adds
//     at most 0.5 / 4096 = 0.012%, so every value is within 0.1% of its
//     bucket's representative (the tests check every bucket; the largest
//     error is 0.0993%).
//   - One overflow bucket for values above kMaxValueNs. Quantiles that land
//     there return kMaxValueNs + 1: read it as "more than kMaxValueNs".
// There are NumBuckets() (16,106) buckets in all.
//
// Storage is sparse: a sorted vector holding one 4-byte word per populated
// bucket (16-bit index, 16-bit count; a bucket past 65,535 values takes one
// more word per 65,535), so memory follows the number of distinct buckets
// seen, not the number of values. RTTs within +-2% of each other span about
// 22 buckets; the worst case (every bucket) is 64 KB. Merge sizes its result
// exactly.
//
// Quantile(q) uses the nearest-rank definition (NearestRank below): the
// representative of the bucket holding the smallest recorded value v such
// that at least ceil(q * count()) values are <= v. The true nearest-rank
// value lies in that bucket, so the answer is within 0.1% of it (values above
// kMaxValueNs aside).
//
// Not thread-safe; copyable and movable.
class LogHistogram {
 public:
  static constexpr int64_t kExactLimit = 4096;
  static constexpr double kBucketRelativeError = 0.0009;
  static constexpr double kGrowthFactor =
      (1 + kBucketRelativeError) / (1 - kBucketRelativeError);
  static constexpr int64_t kMaxValueNs = 10'000'000'000'000;

  // One populated bucket: values in [lower_ns, upper_ns] (both inclusive)
  // are reported as representative_ns. The overflow bucket's upper_ns is
  // INT64_MAX.
  struct Bucket {
    int64_t lower_ns = 0;
    int64_t upper_ns = 0;
    int64_t representative_ns = 0;
    uint64_t count = 0;
  };

  // Bucket layout, shared by all histograms. Index 0 is the zero/underflow
  // bucket, NumBuckets() - 1 the overflow bucket.
  static int NumBuckets();
  static int BucketIndexFor(int64_t value_ns);
  static Bucket BucketAt(int index);  // with count 0

  void Record(int64_t value_ns);
  void Merge(const LogHistogram& other);
  void Clear();

  // nullopt when empty. q is clamped to [0, 1].
  std::optional<int64_t> Quantile(double q) const;

  // Number of recorded values that are <= bound_ns, counting each value as
  // its bucket's representative (as Quantile does). Exact for buckets that
  // lie wholly on one side of the bound; for a Prometheus `le` bucket it is
  // off by at most the one bucket that straddles the bound (0.1%).
  uint64_t CountAtOrBelow(int64_t bound_ns) const;

  // Calls fn for each populated bucket in increasing order of value. Summing
  // counts along the way gives cumulative (Prometheus-style) buckets.
  void ForEachBucket(absl::FunctionRef<void(const Bucket&)> fn) const;

  uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  size_t populated_buckets() const;

  // sizeof(*this) plus the heap block holding the buckets.
  size_t ApproxMemoryBytes() const;

  // The populated buckets as bytes, for history rows (the layout above is
  // the format: bucket indices, not values). Per bucket, in increasing
  // order: one byte (gap << 4 | count) when the gap to the previous index
  // (minus one) and the count are both below 16, else a 0 byte then the
  // gap and the count as LEB128 varints. A steady RTT's minute (~20
  // buckets) takes ~25 bytes. Decode(Encode(h)) == h.
  std::string Encode() const;
  // InvalidArgument for bytes Encode cannot have produced (truncated, an
  // index past the layout, a zero count, more than 2^32 values in all).
  static absl::StatusOr<LogHistogram> Decode(absl::string_view bytes);

  friend bool operator==(const LogHistogram& a, const LogHistogram& b) {
    return a.count_ == b.count_ && a.entries_ == b.entries_;
  }

 private:
  // Each entry is (bucket index << kIndexShift) | count, so sorting entries
  // sorts by bucket index. A bucket holding n values has n / kMaxEntryCount
  // full entries then one with the remainder (if any): one canonical form,
  // so equal histograms have equal entries.
  static constexpr int kIndexShift = 16;
  static constexpr uint32_t kMaxEntryCount = (uint32_t{1} << kIndexShift) - 1;

  // Appends bucket `index` holding `count` values in canonical form.
  static void AppendBucket(uint32_t index, uint64_t count,
                           std::vector<uint32_t>& out);

  std::vector<uint32_t> entries_;
  uint64_t count_ = 0;
};

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_LOG_HISTOGRAM_H_
