#include "server/stats/rtt_distribution.h"

#include <algorithm>

#include "server/stats/memory_accounting.h"

namespace latency {

RttDistribution::RttDistribution(const RttDistribution& other)
    : values_(other.values_),
      histogram_(other.histogram_
                     ? std::make_unique<LogHistogram>(*other.histogram_)
                     : nullptr) {}

RttDistribution& RttDistribution::operator=(const RttDistribution& other) {
  if (this != &other) *this = RttDistribution(other);
  return *this;
}

void RttDistribution::Record(int64_t value_ns) {
  value_ns = std::max<int64_t>(0, value_ns);
  if (histogram_) {
    histogram_->Record(value_ns);
    return;
  }
  if (values_.size() == kMaxExactValues) {
    ConvertToHistogram();
    histogram_->Record(value_ns);
    return;
  }
  values_.push_back(value_ns);
}

void RttDistribution::Merge(const RttDistribution& other) {
  if (other.empty()) return;
  if (exact() && other.exact() &&
      values_.size() + other.values_.size() <= kMaxExactValues) {
    values_.reserve(values_.size() + other.values_.size());
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
    return;
  }
  if (exact()) ConvertToHistogram();
  other.AddTo(*histogram_);
}

uint64_t RttDistribution::count() const {
  return histogram_ ? histogram_->count() : values_.size();
}

void RttDistribution::AddTo(LogHistogram& out) const {
  if (histogram_) {
    out.Merge(*histogram_);
    return;
  }
  for (int64_t value : values_) out.Record(value);
}

size_t RttDistribution::HeapBytes() const {
  if (histogram_) {
    return stats_internal::HeapBlockBytes(sizeof(LogHistogram)) +
           histogram_->ApproxMemoryBytes() - sizeof(LogHistogram);
  }
  return stats_internal::HeapBlockBytes(values_.capacity() * sizeof(int64_t));
}

void RttDistribution::ConvertToHistogram() {
  histogram_ = std::make_unique<LogHistogram>();
  for (int64_t value : values_) histogram_->Record(value);
  values_.clear();
  values_.shrink_to_fit();
}

void MergedQuantiles::Add(const RttDistribution& distribution) {
  if (distribution.empty()) return;
  if (exact_ && distribution.exact()) {
    values_.insert(values_.end(), distribution.values().begin(),
                   distribution.values().end());
    sorted_ = false;
    return;
  }
  if (exact_) {
    for (int64_t value : values_) histogram_.Record(value);
    values_.clear();
    exact_ = false;
  }
  distribution.AddTo(histogram_);
}

uint64_t MergedQuantiles::count() const {
  return exact_ ? values_.size() : histogram_.count();
}

std::optional<int64_t> MergedQuantiles::Quantile(double q) {
  if (!exact_) return histogram_.Quantile(q);
  if (values_.empty()) return std::nullopt;
  if (!sorted_) {
    std::sort(values_.begin(), values_.end());
    sorted_ = true;
  }
  return values_[NearestRank(q, values_.size()) - 1];
}

}  // namespace latency
