#ifndef LATENCY_SERVER_STATS_EXPOSITION_HISTOGRAM_H_
#define LATENCY_SERVER_STATS_EXPOSITION_HISTOGRAM_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace latency {

// ExpositionHistogram counts RTTs in the fixed, coarse buckets that the
// Prometheus exposition publishes (latency_rtt_seconds). It is a layout of
// its own, separate from LogHistogram's 16,106 buckets: every bucket is one
// series per target and kind in Prometheus, so there are few, at the usual
// 1-2.5-5 steps from 10 us (loopback) to 10 s (a dead path):
//   10, 25, 50, 100, 250, 500 us; 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms;
//   1, 2.5, 5, 10 s; and +Inf.
// Counts are exact (a value equal to a bound counts in that bound's bucket,
// as `le` means), and so is the sum: integer nanoseconds, not bucket
// midpoints. 168 bytes, no heap.
//
// Not thread-safe; copyable.
class ExpositionHistogram {
 public:
  static constexpr std::array<int64_t, 19> kBoundsNs = {
      10'000,        25'000,        50'000,        100'000,       250'000,
      500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
      25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
      1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
  static constexpr size_t kNumBounds = kBoundsNs.size();

  // Index of the first bound >= value_ns (kNumBounds: above every bound).
  static size_t BoundIndexOf(int64_t value_ns);

  // Negative values are recorded as 0.
  void Record(int64_t value_ns);

  uint64_t count() const { return count_; }
  // Sum of the recorded values in nanoseconds; wraps after 584 years.
  uint64_t sum_ns() const { return sum_ns_; }
  // Values <= kBoundsNs[bound_index]; count() for bound_index >= kNumBounds.
  uint64_t CountAtOrBelowBound(size_t bound_index) const;

  friend bool operator==(const ExpositionHistogram& a,
                         const ExpositionHistogram& b) {
    return a.counts_ == b.counts_ && a.count_ == b.count_ &&
           a.sum_ns_ == b.sum_ns_;
  }

 private:
  // counts_[i]: values in (kBoundsNs[i-1], kBoundsNs[i]]; the last entry
  // counts values above every bound.
  std::array<uint64_t, kNumBounds + 1> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
};

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_EXPOSITION_HISTOGRAM_H_
