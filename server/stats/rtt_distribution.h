#ifndef LATENCY_SERVER_STATS_RTT_DISTRIBUTION_H_
#define LATENCY_SERVER_STATS_RTT_DISTRIBUTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "server/stats/log_histogram.h"

namespace latency {

// RttDistribution holds the RTTs of one time slot: the values themselves
// while there are at most kMaxExactValues of them, a LogHistogram from then
// on. A slot of a 1 Hz series keeps its values for its first minutes (10 s and
// 30 s slots hold 10 and 30), so the short windows report exact quantiles
// where a histogram would add up to 0.1%; longer and faster series pay 8 bytes
// per populated bucket instead of 8 per value. The two forms hold the same
// information for merging: a histogram made from the values equals one that
// recorded them.
//
// Not thread-safe; copyable and movable.
class RttDistribution {
 public:
  static constexpr size_t kMaxExactValues = 32;

  RttDistribution() = default;
  RttDistribution(const RttDistribution& other);
  RttDistribution& operator=(const RttDistribution& other);
  RttDistribution(RttDistribution&&) = default;
  RttDistribution& operator=(RttDistribution&&) = default;

  // Negative values are recorded as 0.
  void Record(int64_t value_ns);
  // Keeps the values when both sides have them and there are at most
  // kMaxExactValues in all; a histogram otherwise.
  void Merge(const RttDistribution& other);

  uint64_t count() const;
  bool empty() const { return count() == 0; }
  // True while the values themselves are kept.
  bool exact() const { return histogram_ == nullptr; }
  // The kept values, in record order; empty unless exact().
  const std::vector<int64_t>& values() const { return values_; }
  // Records this distribution's values (or merges its histogram) into `out`.
  void AddTo(LogHistogram& out) const;

  // Heap bytes owned (values or histogram), as glibc allocates them.
  size_t HeapBytes() const;

 private:
  void ConvertToHistogram();

  std::vector<int64_t> values_;
  std::unique_ptr<LogHistogram> histogram_;
};

// MergedQuantiles answers quantiles over several RttDistributions: exact
// (nearest rank over the values) when every one added still held its values,
// from their merged LogHistogram (within 0.1%) otherwise.
class MergedQuantiles {
 public:
  void Add(const RttDistribution& distribution);

  uint64_t count() const;
  // False once any distribution added had become a histogram.
  bool exact() const { return exact_; }
  // Nearest-rank quantile (see NearestRank); nullopt when empty.
  std::optional<int64_t> Quantile(double q);

 private:
  bool exact_ = true;
  bool sorted_ = true;
  std::vector<int64_t> values_;
  LogHistogram histogram_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_RTT_DISTRIBUTION_H_
