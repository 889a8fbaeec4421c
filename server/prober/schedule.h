#ifndef LATENCY_SERVER_PROBER_SCHEDULE_H_
#define LATENCY_SERVER_PROBER_SCHEDULE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace latency {

// ProbeSchedule is a pure fixed-rate timetable: each series is due every
// `interval_ns` from its first due time, whatever happened before. The caller
// passes the time in, so tests drive it with plain numbers.
//
// Being late never shifts the timetable (no coordinated omission): a probe
// popped late keeps its scheduled time, and when the caller falls more than
// an interval behind, the missed ticks are reported as `skipped` instead of
// being sent in a burst.
class ProbeSchedule {
 public:
  struct Due {
    int series = 0;
    int64_t scheduled_ns = 0;
    uint64_t skipped = 0;
  };

  // Adds a series and returns its number (0, 1, ...).
  int Add(int64_t first_due_ns, int64_t interval_ns);

  // Adds one series per interval, numbered in order, with first due times
  // spread evenly across each interval (SpreadFirstDue).
  void AddSpread(int64_t start_ns, const std::vector<int64_t>& intervals_ns);

  // Stops series `series` for good: it is never due again. Its number is
  // not reused (probers keep numbers equal to their slot indices).
  void Remove(int series);

  // Appends every series due at `now_ns` to `due` and schedules its next tick.
  void PopDue(int64_t now_ns, std::vector<Due>* due);

  // The earliest due time, or nullopt when there are no series.
  // A removed series' last tick may still show here once (lazy deletion).
  std::optional<int64_t> NextDueNs() const;

  size_t size() const { return interval_ns_.size(); }

 private:
  struct Entry {
    int64_t due_ns;
    int series;
    bool operator>(const Entry& other) const {
      return due_ns != other.due_ns ? due_ns > other.due_ns
                                    : series > other.series;
    }
  };
  std::vector<int64_t> interval_ns_;
  std::vector<bool> removed_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

// LagTracker keeps the largest send lag (actual - scheduled) of about the
// last minute: the maxima of six 10-second slots of monotonic time. Reading
// takes nothing away, so every reader (the two Prometheus servers of an HA
// pair, the dashboard) sees the same value, which only ages out.
// Thread-safe: probers note, metrics readers read.
class LagTracker {
 public:
  static constexpr int64_t kSlotNs = 10'000'000'000;
  static constexpr int kSlots = 6;

  void Note(int64_t lag_ns, int64_t now_ns) {
    const int64_t slot = now_ns / kSlotNs;
    absl::MutexLock lock(&mu_);
    Slot& s = slots_[slot % kSlots];
    if (s.index != slot) s = Slot{slot, 0};
    if (lag_ns > s.max_ns) s.max_ns = lag_ns;
  }
  // The largest lag noted in the slots that end after now - 1 minute.
  int64_t MaxNs(int64_t now_ns) const {
    const int64_t current = now_ns / kSlotNs;
    absl::MutexLock lock(&mu_);
    int64_t max_ns = 0;
    for (const Slot& s : slots_) {
      if (s.index > current - kSlots && s.index <= current) {
        max_ns = std::max(max_ns, s.max_ns);
      }
    }
    return max_ns;
  }

 private:
  struct Slot {
    int64_t index = -1;
    int64_t max_ns = 0;
  };
  mutable absl::Mutex mu_;
  Slot slots_[kSlots] ABSL_GUARDED_BY(mu_);
};

// TimedQueue pops keys in time order (deadlines, expiries). Entries are
// never removed early: a consumer checks whether a popped key still matters
// (lazy deletion). Times pushed in order (a prober whose targets share one
// timeout pushes nothing else) go to a ring, O(1) and allocation-free once
// it has grown; the others to a heap, O(log n).
template <typename Key>
class TimedQueue {
 public:
  void Push(int64_t time_ns, const Key& key) {
    if (ring_size_ > 0 && time_ns < RingBack().first) {
      heap_.push({time_ns, key});
      return;
    }
    if (ring_size_ == ring_.size()) GrowRing();
    ring_[(ring_head_ + ring_size_++) % ring_.size()] = {time_ns, key};
  }
  bool empty() const { return ring_size_ == 0 && heap_.empty(); }
  int64_t next_ns() const {
    if (heap_.empty()) return ring_[ring_head_].first;
    if (ring_size_ == 0) return heap_.top().first;
    return std::min(ring_[ring_head_].first, heap_.top().first);
  }
  // Pops the earliest entry due at `now_ns`; false when none is.
  bool PopDue(int64_t now_ns, int64_t* time_ns, Key* key) {
    if (empty() || next_ns() > now_ns) return false;
    if (ring_size_ > 0 &&
        (heap_.empty() || ring_[ring_head_].first <= heap_.top().first)) {
      *time_ns = ring_[ring_head_].first;
      *key = ring_[ring_head_].second;
      ring_head_ = (ring_head_ + 1) % ring_.size();
      --ring_size_;
      return true;
    }
    *time_ns = heap_.top().first;
    *key = heap_.top().second;
    heap_.pop();
    return true;
  }

 private:
  using Entry = std::pair<int64_t, Key>;
  struct LaterFirst {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.first > b.first;
    }
  };
  const Entry& RingBack() const {
    return ring_[(ring_head_ + ring_size_ - 1) % ring_.size()];
  }
  void GrowRing() {
    std::vector<Entry> bigger(std::max<size_t>(16, 2 * ring_.size()));
    for (size_t i = 0; i < ring_size_; ++i) {
      bigger[i] = ring_[(ring_head_ + i) % ring_.size()];
    }
    ring_ = std::move(bigger);
    ring_head_ = 0;
  }

  std::vector<Entry> ring_;
  size_t ring_head_ = 0, ring_size_ = 0;
  std::priority_queue<Entry, std::vector<Entry>, LaterFirst> heap_;
};

// First due time of series `index` of `count` sharing one interval: spread
// evenly across the interval so N targets do not all fire at once.
int64_t SpreadFirstDue(int64_t start_ns, int64_t interval_ns, int index,
                       int count);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_SCHEDULE_H_
