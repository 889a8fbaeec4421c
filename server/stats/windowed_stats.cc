#include "server/stats/windowed_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/stats/memory_accounting.h"

namespace latency {
namespace {

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kMaxWindowNs = 3600 * kSecondNs;
constexpr int64_t kFineSlotNs = 10 * kSecondNs;
// Enough for the steady state (about 38 slots); more only with late
// samples in gaps, and then the vector just grows.
constexpr size_t kSlotsReserve = 40;

struct Tier {
  int64_t max_age_ns;
  int64_t slot_ns;
};
constexpr Tier kTiers[] = {
    {60 * kSecondNs, kFineSlotNs},
    {300 * kSecondNs, 30 * kSecondNs},
    {900 * kSecondNs, 60 * kSecondNs},
    {kMaxWindowNs, 300 * kSecondNs},
};

int64_t SlotWidthForAge(int64_t age_ns) {
  for (const Tier& tier : kTiers) {
    if (age_ns < tier.max_age_ns) return tier.slot_ns;
  }
  return kTiers[std::size(kTiers) - 1].slot_ns;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

int64_t ClampedWindowNs(absl::Duration window) {
  return std::clamp<int64_t>(absl::ToInt64Nanoseconds(window), 0, kMaxWindowNs);
}

size_t StringHeapBytes(const std::string& s) {
  // libstdc++ keeps up to 15 characters inline.
  return s.capacity() > 15 ? stats_internal::HeapBlockBytes(s.capacity() + 1)
                           : 0;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseWindow(absl::string_view text) {
  if (text == "1m") return absl::Minutes(1);
  if (text == "5m") return absl::Minutes(5);
  if (text == "15m") return absl::Minutes(15);
  if (text == "1h") return absl::Hours(1);
  return absl::InvalidArgumentError(
      absl::StrCat("window \"", text, "\" is not one of 1m, 5m, 15m, 1h"));
}

std::optional<double> WindowCounts::loss_percent() const {
  if (sent == 0) return std::nullopt;
  return 100.0 * static_cast<double>(lost) / static_cast<double>(sent);
}

void SeriesStats::Slot::AddRtt(int64_t rtt_ns,
                               std::optional<int64_t> network_rtt_ns) {
  rtt.Record(rtt_ns);
  ++received;
  const double value = static_cast<double>(rtt_ns);
  if (received == 1) {
    min_ns = max_ns = rtt_ns;
    mean_ns = value;
    m2 = 0;
  } else {
    min_ns = std::min(min_ns, rtt_ns);
    max_ns = std::max(max_ns, rtt_ns);
    const double delta = value - mean_ns;
    mean_ns += delta / static_cast<double>(received);
    m2 += delta * (value - mean_ns);
  }
  if (network_rtt_ns) {
    if (!network_rtt) network_rtt = std::make_unique<RttDistribution>();
    network_rtt->Record(*network_rtt_ns);
  }
}

void SeriesStats::Slot::MergeMomentsFrom(const Slot& other) {
  start_ns = std::min(start_ns, other.start_ns);
  end_ns = std::max(end_ns, other.end_ns);
  for (size_t i = 0; i < failures.size(); ++i) failures[i] += other.failures[i];
  const uint64_t n_a = received;
  const uint64_t n_b = other.received;
  if (n_b > 0) {
    if (n_a == 0) {
      min_ns = other.min_ns;
      max_ns = other.max_ns;
      mean_ns = other.mean_ns;
      m2 = other.m2;
    } else {
      // Chan et al.'s pairwise update.
      const double a = static_cast<double>(n_a);
      const double b = static_cast<double>(n_b);
      const double delta = other.mean_ns - mean_ns;
      min_ns = std::min(min_ns, other.min_ns);
      max_ns = std::max(max_ns, other.max_ns);
      mean_ns += delta * b / (a + b);
      m2 += other.m2 + delta * delta * a * b / (a + b);
    }
    received += n_b;
  }
}

void SeriesStats::Slot::MergeFrom(const Slot& other) {
  MergeMomentsFrom(other);
  rtt.Merge(other.rtt);
  if (other.network_rtt) {
    if (network_rtt) {
      network_rtt->Merge(*other.network_rtt);
    } else {
      network_rtt = std::make_unique<RttDistribution>(*other.network_rtt);
    }
  }
}

uint64_t SeriesStats::Slot::lost() const {
  uint64_t total = 0;
  for (uint32_t n : failures) total += n;
  return total;
}

size_t SeriesStats::Slot::HeapBytes() const {
  size_t bytes = rtt.HeapBytes();
  if (network_rtt) {
    bytes += stats_internal::HeapBlockBytes(sizeof(RttDistribution)) +
             network_rtt->HeapBytes();
  }
  return bytes;
}

SeriesStats::SeriesStats(int64_t created_ns) : created_ns_(created_ns) {}

void SeriesStats::Record(const Sample& sample) {
  const int64_t t = sample.completed_ns;
  const bool ok = sample.ok() && sample.rtt_ns.has_value();
  const SampleResult result =
      ok || !sample.ok() ? sample.result : SampleResult::kError;
  latest_ns_ = totals_.sent == 0 ? t : std::max(latest_ns_, t);

  ++totals_.sent;
  ++totals_.by_result[static_cast<int>(result)];
  ++(ok ? totals_.received : totals_.lost);

  LastSample last;
  last.completed_ns = t;
  last.result = result;
  last.timestamp_source = sample.timestamp_source;
  if (ok) {
    last.rtt_ns = std::max<int64_t>(0, *sample.rtt_ns);
    if (std::optional<int64_t> network = sample.network_rtt_ns()) {
      last.network_rtt_ns = std::max<int64_t>(0, *network);
    }
  } else {
    last.error = sample.error.substr(0, kMaxErrorBytes);
  }

  if (Slot* slot = SlotFor(t)) {
    if (ok) {
      slot->AddRtt(*last.rtt_ns, last.network_rtt_ns);
    } else {
      ++slot->failures[static_cast<int>(result) - 1];
    }
  }

  if (ok) {
    total_rtt_.Record(*last.rtt_ns);
    if (ok_samples_ > 0) {
      const double d = static_cast<double>(*last.rtt_ns - previous_rtt_ns_);
      jitter_ns_ += (std::abs(d) - jitter_ns_) / 16.0;
    }
    previous_rtt_ns_ = *last.rtt_ns;
    ++ok_samples_;
    consecutive_failures_ = 0;
    if (!last_ok_ || t >= last_ok_->completed_ns) last_ok_ = last;
  } else {
    ++consecutive_failures_;
  }
  last_ = std::move(last);
}

SeriesStats::Slot* SeriesStats::SlotFor(int64_t t) {
  if (slots_.capacity() == 0) slots_.reserve(kSlotsReserve);
  if (!slots_.empty() && t >= slots_.back().start_ns &&
      t < slots_.back().end_ns) {
    return &slots_.back();
  }
  auto starts_after_t = [&] {
    return std::partition_point(
        slots_.begin(), slots_.end(),
        [t](const Slot& slot) { return slot.start_ns <= t; });
  };
  auto next = starts_after_t();
  if (next != slots_.begin() && t < std::prev(next)->end_ns) {
    return &*std::prev(next);
  }
  const int64_t start = FloorDiv(t, kFineSlotNs) * kFineSlotNs;
  if (start + kFineSlotNs <= latest_ns_ - kMaxWindowNs) return nullptr;
  slots_.emplace(next, start, start + kFineSlotNs);
  Compact(latest_ns_);
  // t's slot survives compaction, possibly merged with a neighbour.
  return &*std::prev(starts_after_t());
}

void SeriesStats::Compact(int64_t now_ns) {
  const int64_t horizon = now_ns - kMaxWindowNs;
  size_t kept = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (slot.end_ns <= horizon) continue;
    if (kept > 0) {
      // The older neighbour is at least as old, so it may be as coarse as
      // this slot's age allows.
      Slot& previous = slots_[kept - 1];
      const int64_t width = SlotWidthForAge(now_ns - slot.end_ns);
      if (FloorDiv(previous.start_ns, width) ==
          FloorDiv(slot.start_ns, width)) {
        previous.MergeFrom(slot);
        continue;
      }
    }
    if (kept != i) slots_[kept] = std::move(slot);
    ++kept;
  }
  slots_.erase(slots_.begin() + static_cast<std::ptrdiff_t>(kept),
               slots_.end());
}

size_t SeriesStats::FirstSlotInWindow(absl::Duration window,
                                      int64_t now_ns) const {
  const int64_t from = now_ns - ClampedWindowNs(window);
  return static_cast<size_t>(std::partition_point(slots_.begin(), slots_.end(),
                                                  [from](const Slot& slot) {
                                                    return slot.end_ns <= from;
                                                  }) -
                             slots_.begin());
}

WindowCounts SeriesStats::Counts(absl::Duration window, int64_t now_ns,
                                 int64_t* next_change_ns) const {
  WindowCounts counts;
  const size_t first = FirstSlotInWindow(window, now_ns);
  if (next_change_ns != nullptr) {
    // A slot is in the window while end_ns > now - window.
    *next_change_ns = first < slots_.size()
                          ? slots_[first].end_ns + ClampedWindowNs(window)
                          : std::numeric_limits<int64_t>::max();
  }
  for (size_t i = first; i < slots_.size(); ++i) {
    counts.received += slots_[i].received;
    counts.lost += slots_[i].lost();
  }
  counts.sent = counts.received + counts.lost;
  return counts;
}

WindowSnapshot SeriesStats::Snapshot(absl::Duration window,
                                     int64_t now_ns) const {
  WindowSnapshot snapshot;
  snapshot.window = absl::Nanoseconds(ClampedWindowNs(window));
  Slot sum(0, 0);
  MergedQuantiles rtt;
  MergedQuantiles network_rtt;
  for (size_t i = FirstSlotInWindow(window, now_ns); i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    sum.MergeMomentsFrom(slot);
    rtt.Add(slot.rtt);
    if (slot.network_rtt) network_rtt.Add(*slot.network_rtt);
  }
  snapshot.received = sum.received;
  snapshot.lost = sum.lost();
  snapshot.sent = snapshot.received + snapshot.lost;
  for (int r = 1; r < kNumSampleResults; ++r) {
    if (sum.failures[r - 1] > 0) {
      snapshot.failures[SampleResultName(static_cast<SampleResult>(r))] =
          sum.failures[r - 1];
    }
  }
  snapshot.loss_percent =
      WindowCounts{snapshot.sent, snapshot.received, snapshot.lost}
          .loss_percent();
  if (snapshot.received == 0) return snapshot;

  snapshot.last_rtt_ns = last_ok_->rtt_ns;
  snapshot.min_ns = sum.min_ns;
  snapshot.max_ns = sum.max_ns;
  snapshot.mean_ns = sum.mean_ns;
  snapshot.stddev_ns =
      std::sqrt(std::max(0.0, sum.m2 / static_cast<double>(snapshot.received)));
  auto quantile = [&](double q) {
    return std::clamp(*rtt.Quantile(q), sum.min_ns, sum.max_ns);
  };
  snapshot.percentiles_exact = rtt.exact();
  snapshot.p50_ns = quantile(0.5);
  snapshot.p90_ns = quantile(0.9);
  snapshot.p99_ns = quantile(0.99);
  snapshot.p999_ns = quantile(0.999);
  snapshot.network_p50_ns = network_rtt.Quantile(0.5);
  snapshot.jitter_ns = jitter_ns();
  return snapshot;
}

std::optional<int64_t> SeriesStats::last_completed_ns() const {
  if (totals_.sent == 0) return std::nullopt;
  return latest_ns_;
}

std::optional<double> SeriesStats::jitter_ns() const {
  if (ok_samples_ < 2) return std::nullopt;
  return jitter_ns_;
}

size_t SeriesStats::ApproxMemoryBytes() const {
  size_t bytes = sizeof(*this) + stats_internal::HeapBlockBytes(
                                     slots_.capacity() * sizeof(Slot));
  for (const Slot& slot : slots_) bytes += slot.HeapBytes();
  if (last_) bytes += StringHeapBytes(last_->error);
  return bytes;
}

}  // namespace latency
