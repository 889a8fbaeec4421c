#include "server/stats/exposition_histogram.h"

#include <algorithm>

namespace latency {

size_t ExpositionHistogram::BoundIndexOf(int64_t value_ns) {
  return static_cast<size_t>(
      std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), value_ns) -
      kBoundsNs.begin());
}

void ExpositionHistogram::Record(int64_t value_ns) {
  value_ns = std::max<int64_t>(0, value_ns);
  ++counts_[BoundIndexOf(value_ns)];
  ++count_;
  sum_ns_ += static_cast<uint64_t>(value_ns);
}

uint64_t ExpositionHistogram::CountAtOrBelowBound(size_t bound_index) const {
  if (bound_index >= kNumBounds) return count_;
  uint64_t total = 0;
  for (size_t i = 0; i <= bound_index; ++i) total += counts_[i];
  return total;
}

}  // namespace latency
